"""CoTTA: EMA teacher, stochastic restore, anchor, augmented pseudo-labels."""
import copy
import math

import pytest
import torch

from mmseg_ecotta.models import TTABatchNorm2d
from mmseg_ecotta.tta import build_tta_method
from ..conftest import TINY_MODEL, build_model
from .test_methods import make_batch

# One view keeps the tests fast where the augmentation does not matter.
FAST = dict(aug_scales=(1.0, ), aug_flip=False)


def build_cotta(**kwargs):
    return build_tta_method(
        dict(type='CoTTA', **kwargs), build_model(TINY_MODEL))


def test_teacher_is_exact_ema_of_student():
    method = build_cotta(restore_prob=0.0, **FAST)
    teacher = {n: p.clone() for n, p in method.teacher.named_parameters()}
    method.test_step(make_batch())
    student = dict(method.model.named_parameters())
    m = 0.999
    for name, p in method.teacher.named_parameters():
        expected = m * teacher[name] + (1 - m) * student[name]
        assert torch.equal(p, expected), name
    assert any(not torch.equal(p, teacher[n])
               for n, p in method.teacher.named_parameters())


def test_stochastic_restore_rate_and_values():
    p = 0.01
    method = build_cotta(restore_prob=p, ema_momentum=1.0, **FAST)
    anchor = dict(method.anchor.named_parameters())
    with torch.no_grad():
        for name, param in method.named_params:
            param.copy_(anchor[name] + 1)
    torch.manual_seed(0)
    method.after_update(None, None)
    restored = total = 0
    for name, param in method.named_params:
        back = param == anchor[name]
        # every element is either exactly the anchor's or untouched
        assert torch.equal(param[~back], (anchor[name] + 1)[~back]), name
        restored += int(back.sum())
        total += param.numel()
    assert total > 900_000
    rate, sigma = restored / total, math.sqrt(p * (1 - p) / total)
    assert abs(rate - p) < 5 * sigma, (rate, sigma)


def test_anchor_never_changes_and_reset_restores_all():
    method = build_cotta(
        optimizer=dict(type='Adam', lr=1e-2), restore_prob=0.1, **FAST)
    anchor = copy.deepcopy(method.anchor.state_dict())
    student = copy.deepcopy(method.model.state_dict())
    teacher = copy.deepcopy(method.teacher.state_dict())
    for seed in range(2):
        method.test_step(make_batch(seed))
    for key, value in method.anchor.state_dict().items():
        assert torch.equal(value, anchor[key]), key
    assert any(not torch.equal(v, teacher[k])
               for k, v in method.teacher.state_dict().items())
    method.reset()
    for net, state in ((method.model, student), (method.teacher, teacher)):
        for key, value in net.state_dict().items():
            assert torch.equal(value, state[key]), key
    assert method.optimizer.state_dict()['state'] == {}


def test_one_forward_per_network_and_view():
    method = build_cotta()
    assert len(method.views) == 14
    calls = []
    decode = method._decode
    method._decode = lambda net, x: calls.append(net) or decode(net, x)
    method.test_step(make_batch())
    assert calls.count(method.teacher) == 14
    assert calls.count(method.anchor) == 1


def test_pseudo_label_uses_augmentation_only_where_anchor_is_unsure():
    method = build_cotta(aug_scales=(1.0, 0.5))
    inputs = method.model.data_preprocessor(make_batch(), False)['inputs']
    with torch.no_grad():
        plain = method._decode(method.teacher, inputs).softmax(1)
        method.anchor_threshold = 0.0  # anchor always sure: plain teacher
        assert torch.equal(method.teacher_prediction(inputs), plain)
        method.anchor_threshold = 1.1  # never sure: the view average
        averaged = method.teacher_prediction(inputs)
    assert not torch.allclose(averaged, plain)
    torch.testing.assert_close(
        averaged.sum(1), torch.ones_like(averaged[:, 0]))


def test_scored_prediction_is_the_pseudo_label():
    method = build_cotta(**FAST)
    out = method.test_step(make_batch())[0]
    inputs = method.model.data_preprocessor(make_batch(), False)['inputs']
    assert method._pseudo_label.shape[2:] != inputs.shape[2:]
    assert torch.isfinite(out.seg_logits.data).all()


def test_trainable_subsets():
    bn = build_cotta(trainable='bn', **FAST)
    assert bn.named_params and all(
        isinstance(
            bn.model.get_submodule(n.rsplit('.', 1)[0]), TTABatchNorm2d)
        for n, _ in bn.named_params)
    head = build_cotta(trainable=['decode_head'], **FAST)
    assert head.named_params and all(
        n.startswith('decode_head') for n, _ in head.named_params)
    with pytest.raises(ValueError, match="'all', 'bn'"):
        build_cotta(trainable='everything')
    with pytest.raises(ValueError, match='matches no parameter'):
        build_cotta(trainable=['head'])
