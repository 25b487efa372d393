"""EATA: reliability and redundancy filters, weights, Fisher regulariser."""
import copy
import os.path as osp
import runpy
import sys

import pytest
import torch

from mmseg_ecotta.tta import build_tta_method
from mmseg_ecotta.tta.fisher import load_fisher
from mmseg_ecotta.tta.losses import entropy_map, entropy_threshold
from ..conftest import (REPO, TINY_MODEL, ShellPayload,
                        assert_refused_before_running, build_model)
from .test_methods import make_batch

EATA_CONFIG = osp.join(
    REPO,
    'configs/tta/synthetic/eata_deeplabv3plus_r18-tiny_synthetic-stream.py')


def build_eata(model=None, **kwargs):
    model = model or build_model(TINY_MODEL)
    return build_tta_method(dict(type='EATA', **kwargs), model)


def test_pixels_above_e0_get_exactly_zero_gradient():
    method = build_eata()
    logits = (torch.randn(1, 19, 8, 8) * 3).requires_grad_(True)
    method.loss(logits).backward()
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
    assert method.loss(logits).item() == pytest.approx(
        expected.item(), rel=1e-6)


def test_redundant_image_gives_exactly_no_update():
    # E0 opened so that the random-init model's first image adapts.
    method = build_eata(e0_factor=1.0)
    batch = make_batch()
    method.test_step(batch)
    assert method.stats['updates'] == 1
    before = copy.deepcopy(method.model.state_dict())
    optim = copy.deepcopy(method.optimizer.state_dict())
    method.test_step(batch)  # the same prediction again: redundant
    assert method.stats['updates'] == 1
    assert method.stats['skipped_filtered'] == 1
    for key, value in method.model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert method.optimizer.state_dict()['state'][0]['step'] == \
        optim['state'][0]['step']


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
    expected = eta.loss(logits).item() + 2000 * penalty()
    assert method.loss(logits).item() == pytest.approx(expected, rel=1e-5)


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
