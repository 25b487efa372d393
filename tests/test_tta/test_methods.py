"""Every registered TTA method, plus each method's own mechanics."""
import contextlib
import copy
import functools
import math

import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample
from torch.nn.modules.batchnorm import _BatchNorm

from mmseg_ecotta.models import TTABatchNorm2d
from mmseg_ecotta.models.segmentors import is_meta_name
from mmseg_ecotta.registry import TTA_METHODS
from mmseg_ecotta.tta import build_tta_method
from mmseg_ecotta.tta.losses import (confident_entropy_loss, entropy_map,
                                     entropy_threshold, self_distillation_loss)
from ..conftest import TINY_META_MODEL, TINY_MODEL, build_model, method_cfg

METHODS = sorted(TTA_METHODS.module_dict)
# EATA's filters and EcoTTA's E0 select nothing on a random-init model (its
# entropy is near ln C everywhere); opened here so that the generic checks
# see updates through the entropy term (EcoTTA would otherwise move only by
# its regulariser). The filters themselves are tested in test_eata.py.
GENERIC_KWARGS = dict(
    EATA=dict(e0_factor=1.0, redundancy_margin=1.01),
    EcoTTA=dict(e0_factor=1.0))


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
    return build_tta_method(method_cfg(name, **kwargs), model)


@pytest.mark.parametrize('name', METHODS)
def test_only_intended_state_changes_and_reset_is_exact(name):
    method = build_method(name, **GENERIC_KWARGS.get(name, {}))
    before = copy.deepcopy(method.model.state_dict())
    trainable = {n for n, _ in method.named_params}
    logit_grads = []  # the loss's gradient w.r.t. the prediction
    if method.optimizer is not None:
        loss_of = method.loss

        def loss(logits, inputs, **outputs):
            logits.register_hook(logit_grads.append)
            return loss_of(logits, inputs, **outputs)

        method.loss = loss
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
        # every update moved the weights through the output term (entropy
        # or pseudo-label), not only through a regulariser
        assert len(logit_grads) == 3
        assert all(bool((g != 0).any()) for g in logit_grads)
    method.reset()
    for key, value in before.items():
        assert torch.equal(method.model.state_dict()[key], value), key


@pytest.mark.parametrize('name', METHODS)
def test_parameters_match_the_method(name):
    method = build_method(name, **GENERIC_KWARGS.get(name, {}))
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
        # every meta network parameter, and nothing else
        meta = method.model.backbone.meta_nets
        assert set(names) == {
            f'backbone.meta_nets.{n}'
            for n, _ in meta.named_parameters()
        }
        assert all(is_meta_name(n) for n in names)
    for n, p in method.model.named_parameters():
        assert p.requires_grad == (n in names), n
    if name == 'EcoTTA':  # and each of them trains
        before = copy.deepcopy(meta.state_dict())
        method.test_step(make_batch())
        frozen = [
            n for n, p in meta.named_parameters() if torch.equal(p, before[n])
        ]
        assert not frozen, frozen


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
    method = build_method('BNAdapt')
    randomize_running_stats(method.model)
    stored = {
        k: v.clone()
        for k, v in method.model.state_dict().items()
        if 'running' in k or 'num_batches' in k
    }
    bns = dict(bn_layers(method.model))
    with record_bn_io(method.model) as io:
        for seed in range(2):
            method.test_step(make_batch(seed))
    assert set(io) == set(bns) and len(bns) > 20
    for name, calls in io.items():
        m = bns[name]
        for x, y, _, _ in calls:  # BN adapt trains no scale or shift
            if x.numel() == x.shape[1]:  # the 1x1 image pool: stored
                expected = F.batch_norm(x, m.running_mean, m.running_var,
                                        m.weight, m.bias, False, 0.0, m.eps)
            else:  # this image's mean and (biased) variance per channel
                var, mean = torch.var_mean(x, dim=(0, 2, 3), correction=0)
                expected = ((x - mean[None, :, None, None]) *
                            torch.rsqrt(var + m.eps)[None, :, None, None] *
                            m.weight[None, :, None, None] +
                            m.bias[None, :, None, None])
            torch.testing.assert_close(y, expected, rtol=1e-4, atol=1e-5)
    for key, value in method.model.state_dict().items():
        if key in stored:
            assert torch.equal(value, stored[key]), key


# --- which statistics each BN layer normalises with -----------------------
IMAGE_POOL_BN = 'decode_head.image_pool.1.bn'  # sees a 1x1 map


def bn_layers(model: torch.nn.Module):
    return [(n, m) for n, m in model.named_modules()
            if isinstance(m, _BatchNorm)]


def randomize_running_stats(*models: torch.nn.Module) -> None:
    """Stored statistics unlike any batch's, so the two are told apart.

    Scales too: mmseg's ResNet starts each block's last BN at scale 0
    (``zero_init_residual``), whose output then depends on no statistics.
    """
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for model in models:
            for _, m in bn_layers(model):
                c = m.num_features
                m.running_mean.copy_(torch.randn(c, generator=g))
                m.running_var.copy_(torch.rand(c, generator=g) * 3 + 0.5)
                m.weight.copy_(torch.rand(c, generator=g) + 0.5)


@contextlib.contextmanager
def record_bn_io(model: torch.nn.Module):
    """Record ``name -> [(input, output, scale, shift), ...]`` per BN layer.

    Copies: the ReLU after a BN overwrites its output in place, and an
    update after the forward changes the affine parameters.
    """
    io, handles = {}, []

    def hook(name, m, args, out):
        io.setdefault(name, []).append(
            tuple(t.detach().clone()
                  for t in (args[0], out, m.weight, m.bias)))

    for name, m in bn_layers(model):
        handles.append(m.register_forward_hook(functools.partial(hook, name)))
    try:
        yield io
    finally:
        for h in handles:
            h.remove()


def statistics_used(m: _BatchNorm, x: torch.Tensor, y: torch.Tensor,
                    weight: torch.Tensor, bias: torch.Tensor) -> str:
    """``'batch'`` or ``'source'``: whose statistics produced ``y``."""
    matches = []
    stored = F.batch_norm(x, m.running_mean, m.running_var, weight, bias,
                          False, 0.0, m.eps)
    if torch.allclose(y, stored, rtol=1e-4, atol=1e-5):
        matches.append('source')
    if x.numel() > x.shape[1]:
        batch = F.batch_norm(x, None, None, weight, bias, True, 0.0, m.eps)
        if torch.allclose(y, batch, rtol=1e-4, atol=1e-5):
            matches.append('batch')
    assert len(matches) == 1, (matches, m)
    return matches[0]


def expected_statistics(name: str, net: str, method) -> str:
    """The pinned table: each method's normalisation, layer by layer."""
    kind = type(method).__name__
    if kind == 'Source' or (kind == 'Tent' and method.recipe == 'cotta'):
        return 'source'  # CoTTA's TENT: eval mode, stored statistics
    if kind in ('BNAdapt', 'Tent', 'EATA') or (kind == 'CoTTA'
                                               and method.recipe == 'cifar'):
        # test-batch statistics; the 1x1 image pool cannot have them
        return 'source' if name == IMAGE_POOL_BN else 'batch'
    if kind == 'CoTTA':  # segmentation recipe: eval mode in all three
        return 'source'
    if kind == 'EcoTTA':
        if is_meta_name(name):
            return 'batch'  # the meta networks' BNs adapt their statistics
        if method.frozen_norm_mode == 'source' or name == IMAGE_POOL_BN:
            return 'source'
        return 'batch'  # 'batch' or 'batch_const' (constant in backward)
    raise AssertionError(f'pin the BN normalisation of {kind} here')


BN_CASES = [(n, {}) for n in METHODS] + [('CoTTA', dict(recipe='cifar')),
                                         ('Tent', dict(recipe='cotta'))]


@pytest.mark.parametrize('name,kwargs', BN_CASES)
def test_each_bn_layer_normalises_as_the_method_says(name, kwargs):
    method = build_method(name, **kwargs)
    nets = dict(student=method.model)
    if name == 'CoTTA':
        nets.update(teacher=method.teacher, anchor=method.anchor)
    randomize_running_stats(*nets.values())
    stored = {
        net:
        copy.deepcopy({
            k: v
            for k, v in model.state_dict().items() if 'running' in k
        })
        for net, model in nets.items()
    }
    records = {}
    with contextlib.ExitStack() as stack:
        for net, model in nets.items():
            records[net] = stack.enter_context(record_bn_io(model))
        method.test_step(make_batch())
    for net, model in nets.items():
        layers = dict(bn_layers(model))
        assert set(records[net]) == set(layers), net
        for layer, calls in records[net].items():
            expected = expected_statistics(layer, net, method)
            for call in calls:
                used = statistics_used(layers[layer], *call)
                assert used == expected, (net, layer, used)
        for key, value in model.state_dict().items():
            if key in stored[net]:  # stored statistics never move
                assert torch.equal(value, stored[net][key]), (net, key)
    if name == 'EcoTTA':  # batch_const: statistics constant in backward
        for layer, m in bn_layers(method.model):
            if not is_meta_name(layer):
                assert m.norm_mode == method.frozen_norm_mode, layer


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
        # sharpened to unit-free spread: a random-init model is unsure
        # everywhere, and the entropy half would see no pixel below E0
        logits, outputs = method.forward(inputs)
        logits = logits / logits.std() * 4
    pairs = outputs['partitions']
    assert len(pairs) == 5
    loss = method.loss(logits, inputs, **outputs)
    p = logits.softmax(1)
    h = -(p * p.log()).sum(1)
    mask = h < 0.4 * math.log(19)
    assert 0.1 < mask.float().mean() < 0.9  # both kinds of pixels
    reg = sum((a - f).abs().mean() for a, f in pairs)
    assert reg > 0
    expected = h[mask].mean() + 0.5 * reg
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


def test_tent_cotta_update_equals_release_algorithm():
    # CoTTA's single_gpu_tent: model.eval(), BN scale and shift trained,
    # the prediction of a no-grad forward is the label of a second one.
    model = build_model(TINY_MODEL)
    model.eval()
    randomize_running_stats(model)  # stored statistics unlike a batch's
    reference = copy.deepcopy(model)  # stock BN layers
    source = copy.deepcopy(model.state_dict())
    method = build_tta_method(
        method_cfg('Tent', recipe='cotta', optimizer=dict(type='SGD', lr=0.1)),
        model)
    batch = make_batch()
    scored = method.test_step(batch)[0].seg_logits.data

    bns = [m for m in reference.modules() if isinstance(m, _BatchNorm)]
    opt = torch.optim.SGD([p for m in bns for p in (m.weight, m.bias)], lr=0.1)
    x = reference.data_preprocessor(batch, False)['inputs']

    def upsampled_logits():
        logits = reference.decode_head(reference.extract_feat(x))
        return F.interpolate(logits, size=x.shape[2:], mode='bilinear')

    with torch.no_grad():
        prediction = upsampled_logits()
    loss = F.cross_entropy(upsampled_logits(), prediction.argmax(1))
    opt.zero_grad()
    loss.backward()
    opt.step()
    torch.testing.assert_close(scored, prediction[0], rtol=0, atol=1e-5)
    ours = method.model.state_dict()
    for name, value in reference.state_dict().items():
        torch.testing.assert_close(ours[name], value, rtol=1e-6, atol=1e-6)
    moved = [
        n for n, p in reference.named_parameters()
        if not torch.equal(p, source[n])
    ]
    assert len(moved) > 10


def test_unknown_tent_recipe_lists_the_valid_ones():
    with pytest.raises(ValueError, match="'cotta', 'tent'"):
        build_method('Tent', recipe='segmentation')


@pytest.mark.parametrize('name,kwargs', [
    ('Tent', {}),
    ('Tent', dict(recipe='cotta')),
    ('EATA', GENERIC_KWARGS['EATA']),
    ('EcoTTA', GENERIC_KWARGS['EcoTTA']),
])
def test_scored_prediction_is_made_before_the_update(name, kwargs):
    # At the shipped learning rate the update moves the prediction a
    # little; the scored one is the prediction of the weights before it.
    method = build_method(name, **kwargs)
    batch = make_batch()
    x = method.model.data_preprocessor(batch, False)['inputs']

    def prediction():
        with torch.no_grad():
            logits = method.decode(x)
        return F.interpolate(logits, size=x.shape[2:], mode='bilinear')[0]

    before = prediction()
    scored = method.test_step(batch)[0].seg_logits.data
    after = prediction()
    assert method.stats['updates'] == 1
    moved = (after - before).abs().max()
    assert moved > 0
    assert (scored - before).abs().max() < moved / 100


@pytest.mark.parametrize('name', ['Source', 'BNAdapt'])
def test_prediction_equals_reference_algorithm(name):
    model = build_model(TINY_MODEL)
    model.eval()
    reference = copy.deepcopy(model)
    if name == 'BNAdapt':  # Schneider et al.: the test batch's statistics
        for m in reference.modules():
            if isinstance(m, _BatchNorm):
                m.forward = functools.partial(train_mode_bn, m)
    method = build_tta_method(dict(type=name), model)
    batch = make_batch()
    ours = method.test_step(batch)[0].seg_logits.data
    with torch.no_grad():
        x = reference.data_preprocessor(batch, False)['inputs']
        logits = F.interpolate(
            reference.decode_head(reference.extract_feat(x)),
            size=x.shape[2:],
            mode='bilinear')
    torch.testing.assert_close(ours, logits[0], rtol=0, atol=1e-5)


def frozen_bn(mode: str, m: _BatchNorm, x: torch.Tensor) -> torch.Tensor:
    """A frozen BN of EcoTTA, by mode, written with functional ops."""
    if mode == 'source' or x.numel() == x.shape[1]:
        return F.batch_norm(x, m.running_mean, m.running_var, m.weight, m.bias,
                            False, 0.0, m.eps)
    if mode in ('batch', 'sample'):  # the same at batch size 1
        return train_mode_bn(m, x)
    # 'batch_const': the batch's statistics, no gradient through them
    var, mean = torch.var_mean(x.detach(), dim=(0, 2, 3), correction=0)
    return ((x - mean[None, :, None, None]) /
            torch.sqrt(var + m.eps)[None, :, None, None] *
            m.weight[None, :, None, None] + m.bias[None, :, None, None])


def test_ecotta_update_equals_reference_algorithm():
    lr, lam = 0.05, 0.25
    model = build_model(TINY_META_MODEL)
    model.eval()
    reference = copy.deepcopy(model)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    method = build_tta_method(
        dict(type='EcoTTA', optimizer=dict(type='SGD', lr=lr, momentum=0.9)),
        model)
    batch = make_batch()
    x = method.model.data_preprocessor(batch, False)['inputs']
    with torch.no_grad():  # E0 at the median entropy: half the pixels
        h = entropy_map(method.decode(x))
        method.threshold = float(h.median())
    method.forward_and_adapt(x)

    # Reference (EcoTTA Sec. 3): frozen network as the mode says, meta
    # BNs with the batch's statistics; entropy of the pixels below E0 plus
    # lambda * sum_k mean |x_k - f_k(x_{k-1})| with f_k a stop-gradient
    # target; SGD with momentum on the meta networks only.
    for n, m in reference.named_modules():
        if isinstance(m, _BatchNorm):
            m.forward = functools.partial(
                train_mode_bn, m) if is_meta_name(n) else functools.partial(
                    frozen_bn, method.frozen_norm_mode, m)
    params = [p for n, p in reference.named_parameters() if is_meta_name(n)]
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9)
    with reference.backbone.recording_partitions() as pairs:
        logits = reference.decode_head(reference.extract_feat(x))
    p = logits.softmax(1)
    h = -(p * logits.log_softmax(1)).sum(1)
    confident = h < method.threshold
    assert 0.2 < confident.float().mean() < 0.8
    reg = sum((a - f.detach()).abs().mean() for a, f in pairs)
    loss = h[confident].mean() + lam * reg
    opt.zero_grad()
    loss.backward()
    opt.step()
    ours = dict(method.model.named_parameters())
    steps = []
    for name, param in reference.named_parameters():
        torch.testing.assert_close(ours[name], param, rtol=0, atol=1e-6)
        steps.append(float((param - before[name]).abs().max()))
    assert max(steps) > 5e-4  # the tolerance is far below the step


def test_non_finite_loss_never_reaches_the_weights():
    method = build_method('Tent', optimizer=dict(type='SGD', lr=0.1))
    before = copy.deepcopy(method.model.state_dict())
    method.loss = lambda logits, inputs, **_: logits.sum() * float('nan')
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
    method.loss = lambda logits, inputs, **_: nan_gradient(
        logits, method.named_params)
    method.test_step(make_batch())
    assert method.stats['skipped_nonfinite'] == 1
    assert method.stats['updates'] == 0
    assert not method.optimizer.state  # no step was taken
    assert all(p.grad is None for _, p in method.named_params)
    for key, value in method.model.state_dict().items():
        assert torch.equal(value, before[key]), key


@pytest.mark.parametrize('name,module', [('Tent', 'tent'), ('EATA', 'eata'),
                                         ('CoTTA', 'cotta'),
                                         ('EcoTTA', 'ecotta')])
def test_missing_optimizer_names_the_default_config(name, module):
    model = build_model(TINY_META_MODEL if name == 'EcoTTA' else TINY_MODEL)
    with pytest.raises(ValueError, match=f'configs/_base_/tta/{module}.py'):
        build_tta_method(dict(type=name), model)


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


def test_building_in_mmsegs_scope_warns_nothing(capfd):
    # mmseg's runner sets the default scope 'mmseg'; a registry lookup
    # through it printed a misleading scope warning on every run.
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')
    build_method('Tent')
    out, err = capfd.readouterr()
    assert 'Failed to search registry' not in out + err
