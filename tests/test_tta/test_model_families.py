"""Each method on each model family: what trains, what normalises how.

Pinned per method x family (issue 28): ResNet DeepLabV3+ normalises with
BN only; SegFormer's MiT encoder with LayerNorm, its head with BN. The
expected sets are read off the stock model, by layer type, before any
method touched it.
"""
import copy
import logging

import pytest
import torch
import torch.nn as nn
from mmengine.logging import MMLogger
from torch.nn.modules.batchnorm import _BatchNorm

from mmseg_ecotta.tta import build_tta_method
from ..conftest import (TINY_MODEL, build_model, build_tiny_segformer,
                        method_cfg)
from .test_methods import GENERIC_KWARGS, make_batch

FAMILIES = dict(
    deeplab=lambda **kw: build_model(TINY_MODEL, **kw),
    segformer=build_tiny_segformer)
# (label, method, settings): every baseline, TENT in both recipes.
METHODS = [
    ('Source', 'Source', {}),
    ('BNAdapt', 'BNAdapt', {}),
    ('Tent', 'Tent', {}),
    ('Tent-cotta', 'Tent', dict(recipe='cotta')),
    ('EATA', 'EATA', GENERIC_KWARGS['EATA']),
    # One view keeps it fast; the views do not change what trains.
    ('CoTTA', 'CoTTA', dict(aug_scales=(1.0, ), aug_flip=False)),
]
NORMS = (_BatchNorm, nn.LayerNorm, nn.GroupNorm)


def affine_of(model: nn.Module, kinds: tuple) -> list:
    """Names of the scale and shift of ``kinds`` layers, in module order."""
    return [
        f'{name}.{p}' for name, m in model.named_modules()
        if isinstance(m, kinds) for p, _ in m.named_parameters(recurse=False)
    ]


def expected_trainable(label: str, model: nn.Module) -> list:
    """What each method trains, by the authors' code.

    TENT and EATA: the scale and shift of every norm layer (TENT's code:
    BN; CoTTA's SegFormer TENT: every ``norm`` and ``bn`` parameter, the
    encoder's LayerNorms and the head's BN). CoTTA's segmentation release:
    every parameter.
    """
    if label in ('Source', 'BNAdapt'):
        return []
    if label == 'CoTTA':
        return [n for n, _ in model.named_parameters()]
    return affine_of(model, NORMS)


@pytest.mark.parametrize('family', sorted(FAMILIES))
@pytest.mark.parametrize(
    'label,name,kwargs', METHODS, ids=[m[0] for m in METHODS])
def test_each_method_trains_what_its_authors_train(family, label, name,
                                                   kwargs):
    model = FAMILIES[family]().eval()
    expected = expected_trainable(label, model)
    method = build_tta_method(method_cfg(name, **kwargs), model)
    names = [n for n, _ in method.named_params]
    # The same set in the same order: on DeepLab, BN parameters in module
    # order, as before LayerNorm and GroupNorm were collected (the
    # optimizer's parameter order, and so every number, unchanged).
    assert names == expected
    for n, p in model.named_parameters():
        assert p.requires_grad == (n in expected), n
    if family == 'segformer' and label in ('Tent', 'Tent-cotta', 'EATA'):
        layer_norms = affine_of(model.backbone, nn.LayerNorm)
        head_bns = affine_of(model.decode_head, _BatchNorm)
        assert layer_norms and head_bns
        assert set(names) == {f'backbone.{n}'
                              for n in layer_norms
                              } | {f'decode_head.{n}'
                                   for n in head_bns}
    if not expected:
        assert method.optimizer is None
        return
    method.test_step(make_batch())
    assert method.stats['updates'] == 1
    if family == 'deeplab':
        return  # ResNet's zero-initialised last BN of each block cuts some
    # Every one of them trains: the step's gradient reaches each.
    still = [n for n, p in method.named_params if not p.grad.any()]
    assert not still, still


def _records(level: int = logging.INFO):
    """Collect what the current MMLogger logs, as a list of messages."""
    messages = []

    class Collect(logging.Handler):

        def emit(self, record):
            messages.append(record.getMessage())

    handler = Collect(level)
    MMLogger.get_current_instance().addHandler(handler)
    return messages, handler


def test_bn_adapt_on_segformer_says_what_it_adapts_and_what_it_cannot():
    model = build_tiny_segformer().eval()
    bns = [n for n, m in model.named_modules() if isinstance(m, _BatchNorm)]
    lns = [n for n, m in model.named_modules() if isinstance(m, nn.LayerNorm)]
    messages, handler = _records()
    try:
        method = build_tta_method(dict(type='BNAdapt'), model)
    finally:
        MMLogger.get_current_instance().removeHandler(handler)
    lines = [m for m in messages if 'BNAdapt' in m]
    assert len(lines) == 1, messages
    line = lines[0]
    assert f'{len(bns)} BN layers (in decode_head)' in line
    assert f'{len(lns)} LayerNorm layers (in backbone)' in line
    assert 'stay as trained' in line
    # The head's BN layers adapt their statistics; the LayerNorms are
    # untouched.
    converted = [
        n for n, m in method.model.named_modules()
        if getattr(m, 'norm_mode', None) == 'batch'
    ]
    assert converted == bns


def test_bn_adapt_on_deeplab_logs_nothing_of_the_kind():
    messages, handler = _records()
    try:
        build_tta_method(dict(type='BNAdapt'), build_model(TINY_MODEL).eval())
    finally:
        MMLogger.get_current_instance().removeHandler(handler)
    assert not [m for m in messages if 'BNAdapt' in m]


def test_bn_adapt_without_any_bn_layer_is_an_error():
    model = build_tiny_segformer(
        decode_head=dict(norm_cfg=dict(type='GN', num_groups=4))).eval()
    with pytest.raises(
            ValueError, match=r'BNAdapt .*MixVisionTransformer.* no BN layer'):
        build_tta_method(dict(type='BNAdapt'), model)
    # TENT adapts that model: its LayerNorms and GroupNorms.
    tent = build_tta_method(method_cfg('Tent'), model)
    assert [n for n, _ in tent.named_params
            ] == affine_of(model, (nn.LayerNorm, nn.GroupNorm))


@pytest.mark.parametrize('name', ['Tent', 'EATA'])
def test_tent_without_affine_norm_layers_is_an_error(name):
    no_affine = dict(type='BN', affine=False)
    model = build_model(
        TINY_MODEL,
        backbone=dict(norm_cfg=no_affine),
        decode_head=dict(norm_cfg=no_affine)).eval()
    with pytest.raises(
            ValueError,
            match=rf'{name} adapts .* EncoderDecoder \(ResNetV1c, '
            r'DepthwiseSeparableASPPHead\) has no BN, LayerNorm.*'
            r"CoTTA \(trainable='all'\)"):
        build_tta_method(method_cfg(name), model)


def test_cotta_norm_subsets_follow_the_layer_types():
    model = build_tiny_segformer().eval()
    for trainable, kinds in (('norm', NORMS), ('bn', _BatchNorm)):
        method = build_tta_method(
            method_cfg('CoTTA', trainable=trainable), model)
        assert [n for n, _ in method.named_params] == affine_of(model, kinds)
    gn = build_tiny_segformer(
        decode_head=dict(norm_cfg=dict(type='GN', num_groups=4))).eval()
    with pytest.raises(ValueError, match="trainable='bn'.*no BN layer"):
        build_tta_method(method_cfg('CoTTA', trainable='bn'), gn)


def test_eata_fisher_covers_the_layer_norms():
    from mmseg_ecotta.tta.fisher import compute_fisher
    model = build_tiny_segformer().eval()
    method = build_tta_method(
        method_cfg('EATA', **GENERIC_KWARGS['EATA']), model)
    result = compute_fisher(method, [make_batch(s) for s in range(2)])
    assert list(result['fisher']) == affine_of(model, NORMS)
    backbone = [n for n in result['fisher'] if n.startswith('backbone')]
    assert backbone and all(bool(result['fisher'][n].any()) for n in backbone)
    # ``make_batch`` images are 64x128: MiT's patch embedding and the
    # head's fusion run at every stride.
    assert torch.isfinite(
        torch.cat([f.flatten() for f in result['fisher'].values()])).all()


@pytest.mark.parametrize(
    'label,name,kwargs', METHODS, ids=[m[0] for m in METHODS])
def test_on_segformer_only_trainable_state_changes_and_reset_is_exact(
        label, name, kwargs):
    method = build_tta_method(
        method_cfg(name, **kwargs),
        build_tiny_segformer().eval())
    before = copy.deepcopy(method.model.state_dict())
    with torch.no_grad():  # as mmengine's TestLoop calls it
        for seed in range(2):
            outputs = method.test_step(make_batch(seed))
    assert torch.isfinite(outputs[0].seg_logits.data).all()
    after = method.model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    trainable = {n for n, _ in method.named_params}
    assert changed <= trainable, changed - trainable
    assert bool(changed) == bool(trainable)
    method.reset()
    for key, value in before.items():
        assert torch.equal(method.model.state_dict()[key], value), key
