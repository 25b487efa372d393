"""Every registered TTA method, plus each method's own mechanics."""
import copy
import functools
import math

import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from mmseg_ecotta.models import TTABatchNorm2d
from mmseg_ecotta.models.segmentors import is_meta_name
from mmseg_ecotta.registry import TTA_METHODS
from mmseg_ecotta.tta import build_tta_method
from mmseg_ecotta.tta.losses import (confident_entropy_loss, entropy_map,
                                     entropy_threshold, self_distillation_loss)
from ..conftest import TINY_META_MODEL, TINY_MODEL, build_model

METHODS = sorted(TTA_METHODS.module_dict)
# EATA's filters select nothing on a random-init model (its entropy is near
# ln C everywhere); opened here so the generic checks see updates. The
# filters themselves are tested in test_eata.py.
GENERIC_KWARGS = dict(EATA=dict(e0_factor=1.0, redundancy_margin=1.01))


def make_batch(seed: int = 0, h: int = 64, w: int = 128) -> dict:
    """A data batch as mmengine's dataloader delivers it (batch size 1)."""
    g = torch.Generator().manual_seed(seed)
    image = torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8)
    sample = SegDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w)))
    sample.gt_sem_seg = PixelData(
        data=torch.randint(0, 19, (1, h, w), generator=g))
    return dict(inputs=[image], data_samples=[sample])


def train_mode_bn(m: torch.nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    """BN with the batch's statistics, running ones untouched.

    A 1x1 map at batch size 1 (the image-pool branch) keeps the stored
    statistics: the documented fallback.
    """
    if x.numel() == x.shape[1]:
        return F.batch_norm(x, m.running_mean, m.running_var, m.weight, m.bias,
                            False, 0.0, m.eps)
    return F.batch_norm(x, None, None, m.weight, m.bias, True, 0.0, m.eps)


def build_method(name: str, **kwargs):
    model = build_model(TINY_META_MODEL if name == 'EcoTTA' else TINY_MODEL)
    model.eval()
    return build_tta_method(dict(type=name, **kwargs), model)


@pytest.mark.parametrize('name', METHODS)
def test_only_intended_state_changes_and_reset_is_exact(name):
    method = build_method(name, **GENERIC_KWARGS.get(name, {}))
    before = copy.deepcopy(method.model.state_dict())
    trainable = {n for n, _ in method.named_params}
    with torch.no_grad():  # as mmengine's TestLoop calls it
        for seed in range(3):
            outputs = method.test_step(make_batch(seed))
    logits = outputs[0].seg_logits.data
    assert torch.isfinite(logits).all()
    assert outputs[0].pred_sem_seg.data.shape == (1, 64, 128)
    after = method.model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed <= trainable, changed - trainable  # frozen stays frozen
    if method.optimizer is not None:
        assert changed, 'a method with parameters must adapt them'
        assert method.stats['updates'] == 3
    method.reset()
    for key, value in before.items():
        assert torch.equal(method.model.state_dict()[key], value), key


@pytest.mark.parametrize('name', METHODS)
def test_parameters_match_the_method(name):
    method = build_method(name)
    names = [n for n, _ in method.named_params]
    bn_params = {
        f'{n}.{p}'
        for n, m in method.model.named_modules()
        if isinstance(m, TTABatchNorm2d) for p in ('weight', 'bias')
    }
    if name in ('Source', 'BNAdapt'):
        assert names == []
    elif name in ('Tent', 'EATA'):
        assert names and set(names) == bn_params
    elif name == 'CoTTA':
        assert names == [n for n, _ in method.model.named_parameters()]
    elif name == 'EcoTTA':
        assert names and all(is_meta_name(n) for n in names)
    for n, p in method.model.named_parameters():
        assert p.requires_grad == (n in names), n


def test_unknown_method_lists_registered_ones():
    with pytest.raises(KeyError, match="'EcoTTA'"):
        build_method('Tnet')


def test_ecotta_requires_meta_backbone():
    model = build_model(TINY_MODEL)
    with pytest.raises(TypeError, match='MetaResNetV1c'):
        build_tta_method(dict(type='EcoTTA'), model)


def test_slide_inference_is_rejected_with_the_fix():
    model = build_model(TINY_MODEL, test_cfg=dict(mode='slide'))
    with pytest.raises(ValueError, match="mode='whole'"):
        build_tta_method(dict(type='Tent'), model)


def test_bn_adapt_uses_batch_statistics_without_moving_stored_ones():
    source, adapt = build_method('Source'), build_method('BNAdapt')
    adapt.model.load_state_dict(source.model.state_dict())
    batch = make_batch()
    a = source.test_step(batch)[0].seg_logits.data
    b = adapt.test_step(batch)[0].seg_logits.data
    assert not torch.allclose(a, b)


# --- losses ----------------------------------------------------------------
def test_entropy_threshold_is_eatas():
    assert entropy_threshold(19) == pytest.approx(0.4 * math.log(19))


def test_confident_entropy_matches_hand_computation():
    logits = torch.tensor([[4.0, 0.0], [0.0, 0.0], [1.0, 0.0]])
    logits = logits.t().reshape(1, 2, 1, 3)
    p = torch.softmax(logits, 1)
    h = -(p * p.log()).sum(1).flatten()  # [0.0709, 0.6931, 0.5822]
    threshold = entropy_threshold(2)  # 0.277: only pixel 0 is confident
    loss = confident_entropy_loss(logits, threshold)
    assert loss.item() == pytest.approx(h[0].item(), rel=1e-6)


def test_pixels_above_e0_contribute_no_gradient():
    logits = torch.randn(1, 19, 8, 8) * 3
    logits.requires_grad_(True)
    threshold = entropy_threshold(19)
    confident_entropy_loss(logits, threshold).backward()
    unreliable = entropy_map(logits.detach()) >= threshold
    assert unreliable.any() and (~unreliable).any()
    assert (logits.grad[0][:, unreliable[0]] == 0).all()
    assert (logits.grad[0][:, ~unreliable[0]] != 0).any()


def test_no_confident_pixel_gives_zero_loss_with_graph():
    logits = torch.zeros(1, 19, 4, 4, requires_grad=True)
    loss = confident_entropy_loss(logits, entropy_threshold(19))
    loss.backward()
    assert loss.item() == 0 and (logits.grad == 0).all()


def test_regulariser_is_zero_when_meta_equals_frozen():
    x = torch.randn(1, 4, 3, 3, requires_grad=True)
    assert self_distillation_loss([(x, x.clone())]).item() == 0
    y = x + 1
    loss = self_distillation_loss([(y, x), (x, x)])
    assert loss.item() == pytest.approx(1.0)


def test_ecotta_loss_equals_hand_computation():
    method = build_method('EcoTTA', reg_weight=0.5)
    inputs = method.model.data_preprocessor(make_batch(), False)['inputs']
    with torch.no_grad():
        logits = method.decode(inputs)
    pairs = list(method.model.backbone.partition_outputs)
    assert len(pairs) == 5
    loss = method.loss(logits)
    h = entropy_map(logits)
    mask = h < 0.4 * math.log(19)
    reg = sum((a - f).abs().mean() for a, f in pairs)
    expected = (h[mask].mean() if mask.any() else 0) + 0.5 * reg
    assert loss.item() == pytest.approx(float(expected), rel=1e-5)


# --- TENT against the reference algorithm ----------------------------------
def test_tent_update_equals_reference_algorithm():
    method = build_method('Tent', optimizer=dict(type='SGD', lr=0.1))
    reference = copy.deepcopy(method.model)
    batch = make_batch()
    method.test_step(batch)

    # Reference (tent.py): train-mode BN without running stats, entropy of
    # the softmax averaged over pixels, SGD on BN scale and shift.
    bns = [m for m in reference.modules() if isinstance(m, TTABatchNorm2d)]
    params = [p for m in bns for p in (m.weight, m.bias)]

    for m in bns:
        m.forward = functools.partial(train_mode_bn, m)
    opt = torch.optim.SGD(params, lr=0.1)
    inputs = reference.data_preprocessor(batch, False)['inputs']
    logits = reference.decode_head(reference.extract_feat(inputs))
    p = logits.softmax(1)
    loss = -(p * logits.log_softmax(1)).sum(1).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    ours = dict(method.model.named_parameters())
    for name, param in reference.named_parameters():
        torch.testing.assert_close(ours[name], param, rtol=1e-6, atol=1e-6)


def test_non_finite_loss_never_reaches_the_weights():
    method = build_method('Tent', optimizer=dict(type='SGD', lr=0.1))
    before = copy.deepcopy(method.model.state_dict())
    method.loss = lambda logits: logits.sum() * float('nan')
    method.test_step(make_batch())
    assert method.stats['skipped_nonfinite'] == 1
    assert method.stats['updates'] == 0
    for key, value in method.model.state_dict().items():
        assert torch.equal(value, before[key]), key


def nan_gradient(logits: torch.Tensor, params) -> torch.Tensor:
    """A finite loss (0) whose gradient is NaN: d sqrt(u)/du at u = 0."""
    return torch.sqrt(sum(p.sum() for _, p in params) * 0.0)


@pytest.mark.parametrize('name', ['Tent', 'EcoTTA'])
def test_non_finite_gradient_never_reaches_the_weights(name):
    # Adam: even a zero gradient would move the weights through its state.
    method = build_method(name, optimizer=dict(type='Adam', lr=0.1))
    before = copy.deepcopy(method.model.state_dict())
    method.loss = lambda logits: nan_gradient(logits, method.named_params)
    method.test_step(make_batch())
    assert method.stats['skipped_nonfinite'] == 1
    assert method.stats['updates'] == 0
    assert not method.optimizer.state  # no step was taken
    assert all(p.grad is None for _, p in method.named_params)
    for key, value in method.model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_optimizer_without_type_is_a_clear_error():
    with pytest.raises(ValueError, match='optimizer.type=Adam'):
        build_method('Tent', optimizer=dict(lr=1e-3))


def test_regulariser_gradient_equals_l1_loss_and_keeps_two_bits():
    from mmseg_ecotta.models.memory_probe import profile_saved_tensors
    adapted = torch.randn(2, 3, 5, 7, dtype=torch.float64, requires_grad=True)
    target = adapted.detach() + torch.randn(2, 3, 5, 7, dtype=torch.float64)
    target[0, 0, 0, :3] = adapted.detach()[0, 0, 0, :3]  # ties: gradient 0
    ours = self_distillation_loss([(adapted, target)])
    (grad, ) = torch.autograd.grad(ours, adapted)
    ref = F.l1_loss(adapted, target)
    (ref_grad, ) = torch.autograd.grad(ref, adapted)
    assert ours.item() == pytest.approx(ref.item(), rel=1e-12)
    torch.testing.assert_close(grad, ref_grad, rtol=0, atol=0)
    big = torch.randn(1, 64, 32, 32, requires_grad=True)
    report = profile_saved_tensors(
        lambda: self_distillation_loss([(big * 1.0, big.detach() + 1)]))
    assert report.activation_bytes <= 2 * big.numel() / 8
