"""EATA: reliability and redundancy filters, weights, Fisher regulariser."""
import copy
import functools
import math
import os.path as osp
import runpy
import sys

import pytest
import torch
import torch.nn.functional as F

from mmseg_ecotta.tta import build_tta_method
from mmseg_ecotta.tta.eata import scaled_redundancy_margin
from mmseg_ecotta.tta.fisher import compute_fisher, load_fisher
from mmseg_ecotta.tta.losses import entropy_map, entropy_threshold
from ..conftest import (REPO, TINY_MODEL, ShellPayload,
                        assert_refused_before_running, build_model, method_cfg,
                        synthetic_config)
from .test_methods import make_batch, train_mode_bn

EATA_CONFIG = synthetic_config('eata')


def build_eata(model=None, **kwargs):
    model = model or build_model(TINY_MODEL)
    model.eval()  # as mmengine's test loop leaves it: dropout off
    return build_tta_method(method_cfg('EATA', **kwargs), model)


def test_pixels_above_e0_get_exactly_zero_gradient():
    method = build_eata()
    logits = (torch.randn(1, 19, 8, 8) * 3).requires_grad_(True)
    method.loss(logits, None).backward()
    unreliable = entropy_map(logits.detach())[0] >= method.threshold
    assert unreliable.any() and (~unreliable).any()
    assert (logits.grad[0][:, unreliable] == 0).all()
    assert (logits.grad[0][:, ~unreliable] != 0).any()


def test_loss_is_reweighted_entropy_of_reliable_pixels():
    method = build_eata(e0_factor=0.4)
    logits = torch.randn(1, 19, 8, 8) * 3
    h = entropy_map(logits)
    e0 = entropy_threshold(19, 0.4)
    mask = h < e0
    expected = (h * torch.exp(-(h - e0)))[mask].mean()  # H / exp(H - E0)
    assert method.loss(logits, None).item() == pytest.approx(
        expected.item(), rel=1e-6)


def test_weight_is_a_constant_of_the_gradient():
    # EATA detaches its weight 1 / exp(H - E0): the gradient is the
    # weighted entropy's gradient, the weight held constant. Written in
    # float64 from the definition.
    method = build_eata(e0_factor=0.4)
    logits = (torch.randn(1, 19, 8, 8) * 3).requires_grad_(True)
    method.loss(logits, None).backward()
    z = logits.detach().double().requires_grad_(True)
    log_p = z.log_softmax(1)
    h = -(log_p.exp() * log_p).sum(1)
    mask = h.detach() < entropy_threshold(19, 0.4)
    weight = torch.exp(entropy_threshold(19, 0.4) - h.detach())
    assert 0 < mask.float().mean() < 1
    (h * weight)[mask].mean().backward()
    torch.testing.assert_close(
        logits.grad.double(), z.grad, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize('redundancy', ['pixel', 'image'])
def test_redundant_image_gives_exactly_no_update(redundancy):
    # E0 opened so that the random-init model's first image adapts.
    method = build_eata(e0_factor=1.0, redundancy=redundancy)
    batch = make_batch()
    method.test_step(batch)
    assert method.stats['updates'] == 1
    # the first image: every reliable pixel is novel
    first = {
        k: method.stats[k]
        for k in ('reliable_pixels', 'selected_pixels')
    }
    assert method.stats['pixels'] >= first['reliable_pixels'] > 0
    assert first['selected_pixels'] == first['reliable_pixels']
    before = copy.deepcopy(method.model.state_dict())
    optim = copy.deepcopy(method.optimizer.state_dict())
    method.test_step(batch)  # the same prediction again: redundant
    assert method.stats['updates'] == 1
    assert method.stats['skipped_filtered'] == 1
    assert method.stats['selected_pixels'] == first['selected_pixels']
    assert method.stats['reliable_pixels'] == 2 * first['reliable_pixels']
    for key, value in method.model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert method.optimizer.state_dict()['state'][0]['step'] == \
        optim['state'][0]['step']


def test_margin_is_scaled_to_the_number_of_classes():
    assert scaled_redundancy_margin(1000) == pytest.approx(0.05)
    assert scaled_redundancy_margin(19) == pytest.approx(0.05 *
                                                         math.sqrt(1000 / 19))
    assert build_eata().redundancy_margin == pytest.approx(0.3627, abs=1e-4)
    assert build_eata(redundancy_margin=0.05).redundancy_margin == 0.05


def test_pixels_of_an_over_represented_class_are_redundant():
    method = build_eata()
    # The moving average is all class 0: confident class-0 pixels are
    # redundant (cosine ~1), confident class-1 pixels new (cosine ~0).
    method._update_average(torch.eye(19)[:1])
    logits = torch.zeros(1, 19, 4, 4)
    logits[0, 0, :2] = 10.0  # rows 0-1: class 0
    logits[0, 1, 2:] = 10.0  # rows 2-3: class 1
    logits.requires_grad_(True)
    method.loss(logits, None).backward()
    # the 8 class-1 pixels are selected, the 8 class-0 ones are not
    assert int((logits.grad[0] != 0).any(0).sum()) == 8
    assert (logits.grad[0][:, :2] == 0).all()
    assert (logits.grad[0][:, 2:] != 0).any()
    # the average moved towards class 1 by EATA's 0.1
    assert method.average_prediction[1] == pytest.approx(0.1, abs=1e-3)
    image = build_eata(redundancy='image')
    image._update_average(torch.eye(19)[:1])
    # one image, mean softmax half class 0: cosine 0.71, redundant
    assert image.loss(logits.detach(), None) is None  # no step


def test_moving_average_follows_passing_images_only():
    method = build_eata(redundancy_margin=0.5)
    a = torch.tensor([[1.0, 0.0, 0.0]])
    b = torch.tensor([[0.0, 1.0, 0.0]])
    assert method.non_redundant(a).all()  # nothing seen yet
    method._update_average(a)
    assert not method.non_redundant(a).any()  # cosine 1 >= 0.5
    assert method.non_redundant(b).all()  # cosine 0 < 0.5
    method._update_average(b)
    torch.testing.assert_close(method.average_prediction,
                               torch.tensor([0.9, 0.1, 0.0]))
    method.reset()
    assert method.average_prediction is None


@pytest.fixture
def fisher_file(tmp_path, cityscapes_root, monkeypatch):
    """A Fisher file made by tools/compute_fisher.py on the tiny fixture."""
    model = build_model(TINY_MODEL)
    checkpoint = str(tmp_path / 'source.pth')
    torch.save(dict(state_dict=model.state_dict()), checkpoint)
    out = str(tmp_path / 'fisher.pth')
    monkeypatch.setattr(sys, 'argv', [
        'compute_fisher.py', EATA_CONFIG, checkpoint, '--out', out,
        '--data-root', cityscapes_root, '--split', 'train'
    ])
    runpy.run_path(
        osp.join(REPO, 'tools/compute_fisher.py'), run_name='__main__')
    return out, model


def test_fisher_round_trip(fisher_file):
    path, model = fisher_file
    data = torch.load(path, weights_only=True)
    assert data['num_images'] == 4  # all that exist (default 500)
    assert data['batch_size'] == 64  # EATA's
    assert data['config'] == EATA_CONFIG
    method = build_eata(model, fisher_file=path)
    assert set(data['fisher']) == {n for n, _ in method.named_params}
    assert all((f >= 0).all() for f in data['fisher'].values())
    assert any((f > 0).any() for f in data['fisher'].values())
    for name, p in method.named_params:  # theta0 = the loaded weights
        assert torch.equal(data['params'][name], p.detach())

    def penalty():
        return sum((method.fisher[n] * (p - method.theta0[n])**2).sum()
                   for n, p in method.named_params).item()

    assert penalty() == 0
    with torch.no_grad():
        for _, p in method.named_params:
            p.add_(0.1)
    assert penalty() > 0
    # the loss is ETA's plus beta (2000) times the penalty (Eq. 9)
    logits = torch.randn(1, 19, 8, 8) * 3
    eta = build_eata(copy.deepcopy(method.model))
    expected = eta.loss(logits, None).item() + 2000 * penalty()
    assert method.loss(logits, None).item() == pytest.approx(
        expected, rel=1e-5)


def test_missing_fisher_file_names_the_tool(tmp_path):
    path = str(tmp_path / 'nope.pth')
    with pytest.raises(FileNotFoundError, match='compute_fisher.py'):
        build_eata(fisher_file=path)


def test_mismatched_fisher_file_lists_the_keys(tmp_path):
    method = build_eata()
    fisher = {n: torch.ones_like(p) for n, p in method.named_params}
    first = next(iter(fisher))
    fisher['backbone.extra.weight'] = torch.ones(3)
    fisher[first] = torch.ones(7)
    path = str(tmp_path / 'bad.pth')
    torch.save(dict(fisher=fisher, params={}), path)
    with pytest.raises(ValueError) as info:
        load_fisher(path, method.named_params)
    assert 'backbone.extra.weight' in str(info.value)
    assert f'{first}: file (7,)' in str(info.value)


def _planted_fisher_file(tmp_path, method) -> tuple:
    """A Fisher file that fits ``method`` and also runs a shell command."""
    marker, path = str(tmp_path / 'pwned'), str(tmp_path / 'fisher.pth')
    fisher = {n: torch.ones_like(p) for n, p in method.named_params}
    torch.save(dict(fisher=fisher, note=ShellPayload(marker)), path)
    return marker, path


def test_planted_fisher_file_is_refused_before_running(tmp_path):
    method = build_eata()
    marker, path = _planted_fisher_file(tmp_path, method)
    assert_refused_before_running(
        lambda: load_fisher(path, method.named_params), path, marker)


def test_planted_fisher_file_loads_with_the_opt_in(tmp_path, unsafe_load):
    method = build_eata()
    marker, path = _planted_fisher_file(tmp_path, method)
    assert set(load_fisher(path, method.named_params)['fisher']) == {
        n
        for n, _ in method.named_params
    }
    assert osp.exists(marker)


def test_fisher_file_with_nan_or_cut_short_is_refused(tmp_path):
    method = build_eata()
    fisher = {n: torch.ones_like(p) for n, p in method.named_params}
    first = sorted(fisher)[0]
    fisher[first][0] = float('nan')
    path = str(tmp_path / 'nan.pth')
    torch.save(dict(fisher=fisher, params={}), path)
    with pytest.raises(
            ValueError,
            match=r"non-finite values in 1 parameters \['" + first) as info:
        load_fisher(path, method.named_params)
    assert path in str(info.value) and 'compute_fisher.py' in str(info.value)
    empty = tmp_path / 'empty.pth'
    empty.write_bytes(b'')
    with pytest.raises(ValueError, match='is empty') as info:
        load_fisher(str(empty), method.named_params)
    assert 'compute_fisher.py' in str(info.value)


def test_fisher_is_eatas_squared_batch_gradient():
    method = build_eata()
    batches = [make_batch(seed) for seed in range(4)]
    params = [p for _, p in method.named_params]

    def grad(batch):  # cross-entropy to the own argmax, per image
        x = method.model.data_preprocessor(batch, False)['inputs']
        logits = method.model.decode_head(method.model.extract_feat(x))
        loss = torch.nn.functional.cross_entropy(logits,
                                                 logits.detach().argmax(1))
        return torch.autograd.grad(loss, params, allow_unused=True)

    with torch.enable_grad():
        g = [grad(b) for b in batches]
    # batches of 2 (EATA: 64): mean gradient of a batch, squared, averaged
    for size, groups in ((2, [(0, 1),
                              (2, 3)]), (3, [(0, 1, 2), (3, )]), (1, [(0, ),
                                                                      (1, ),
                                                                      (2, ),
                                                                      (3, )])):
        result = compute_fisher(method, batches, batch_size=size)
        assert result['num_images'] == 4 and result['batch_size'] == size
        for k, (name, _) in enumerate(method.named_params):
            if g[0][k] is None:
                continue
            expected = sum((sum(g[i][k] for i in group) / len(group))**2
                           for group in groups) / len(groups)
            torch.testing.assert_close(
                result['fisher'][name], expected, rtol=1e-5, atol=1e-12)


def reference_eata_steps(model, batches, fisher, e0, margin, beta, lr):
    """EATA per pixel, written from the paper (Eq. 6-9), SGD steps.

    ``model``: the source model with stock BN layers. Returns its BN
    parameters after the steps and the pixels selected at each step.
    """
    model = copy.deepcopy(model)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for m in bns:  # TENT's normalisation: the test batch's statistics
        m.forward = functools.partial(train_mode_bn, m)
    params = {
        f'{n}.{k}': p
        for n, m in model.named_modules() if m in bns
        for k, p in m.named_parameters(recurse=False)
    }
    theta0 = {n: p.detach().clone() for n, p in params.items()}
    opt = torch.optim.SGD(params.values(), lr=lr)
    average, counts = None, []
    for batch in batches:
        x = model.data_preprocessor(batch, False)['inputs']
        logits = model.decode_head(model.extract_feat(x))
        p = logits.softmax(1)
        h = -(p * logits.log_softmax(1)).sum(1)  # (N, h, w)
        q = p.detach().permute(0, 2, 3, 1)[h < e0]  # reliable, (M, C)
        keep = torch.ones(len(q), dtype=torch.bool)
        if average is not None:  # Eq. 7
            keep = F.cosine_similarity(q, average[None]).abs() < margin
        new = q[keep].mean(0)
        average = new if average is None else 0.9 * average + 0.1 * new
        counts.append((len(q), int(keep.sum())))
        weighted = (h * torch.exp(e0 - h.detach()))[h < e0][keep]  # Eq. 8
        penalty = sum((fisher[n] * (w - theta0[n])**2).sum()
                      for n, w in params.items())  # Eq. 9
        loss = weighted.mean() + beta * penalty
        opt.zero_grad()
        loss.backward()
        opt.step()
    return params, counts


def test_first_updates_equal_reference(tmp_path):
    # A fixed model: with a random one, a pixel may now and then sit on the
    # margin of Eq. 7, where float rounding decides between the two codes.
    torch.manual_seed(0)
    model = build_model(TINY_MODEL)
    model.eval()
    with torch.no_grad():  # confident, varied predictions: both filters act
        model.decode_head.conv_seg.weight.mul_(30)
    source = copy.deepcopy(model)
    lr, beta = 0.05, 2000.0
    method = build_eata(model, optimizer=dict(type='SGD', lr=lr))
    g = torch.Generator().manual_seed(0)
    fisher = {
        n: torch.rand(p.shape, generator=g) * 1e-4
        for n, p in method.named_params
    }
    path = str(tmp_path / 'fisher.pth')
    torch.save(dict(fisher=fisher, params=dict(method.theta0)), path)
    method = build_eata(
        copy.deepcopy(source),
        fisher_file=path,
        optimizer=dict(type='SGD', lr=lr))
    batches = [make_batch(seed) for seed in range(3)]
    for batch in batches:
        method.test_step(batch)
    params, counts = reference_eata_steps(source, batches, fisher,
                                          method.threshold,
                                          method.redundancy_margin, beta, lr)
    # every step adapted; from the second on, the filter of Eq. 7 removed
    # some reliable pixels and kept others
    assert method.stats['updates'] == 3
    assert all(0 < kept < reliable for reliable, kept in counts[1:]), counts
    ours = dict(method.named_params)
    assert set(ours) == set(params)
    source_p = dict(source.named_parameters())
    for name, param in params.items():
        torch.testing.assert_close(ours[name], param, rtol=0, atol=1e-6)
    moved = [n for n, p in params.items() if not torch.equal(p, source_p[n])]
    assert len(moved) > len(params) // 2
