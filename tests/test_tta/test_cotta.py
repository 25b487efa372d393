"""CoTTA: EMA teacher, stochastic restore, anchor, augmented pseudo-labels."""
import copy
import functools
import math

import pytest
import torch
import torch.nn.functional as F

from mmseg_ecotta.models import TTABatchNorm2d
from mmseg_ecotta.tta import build_tta_method
from ..conftest import TINY_MODEL, build_model, method_cfg
from .test_methods import make_batch, train_mode_bn

# One view keeps the tests fast where the augmentation does not matter.
FAST = dict(aug_scales=(1.0, ), aug_flip=False)


def build_cotta(**kwargs):
    model = build_model(TINY_MODEL)
    model.eval()  # as mmengine's test loop leaves it: dropout off
    return build_tta_method(method_cfg('CoTTA', **kwargs), model)


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


def test_teacher_follows_the_student_before_the_restore():
    # The release updates the teacher from the updated student first, then
    # restores the student: a restored element reaches the teacher only at
    # the next step.
    method = build_cotta(restore_prob=1.0, ema_momentum=0.5, **FAST)
    anchor = dict(method.anchor.named_parameters())
    with torch.no_grad():
        for name, param in method.named_params:  # the updated student
            param.copy_(anchor[name] + 1)
    method.after_update(None, None)
    for (name, student), teacher in zip(method.named_params,
                                        method._teacher_params):
        assert torch.equal(student, anchor[name]), name  # p = 1: restored
        # the teacher (the source before) moved halfway to the student
        torch.testing.assert_close(teacher, anchor[name] + 0.5)


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
        plain = F.interpolate(
            method._decode(method.teacher, inputs),
            size=inputs.shape[2:],
            mode='bilinear').softmax(1)
        method.anchor_threshold = 0.0  # anchor always sure: plain teacher
        assert torch.equal(method.teacher_prediction(inputs), plain)
        method.anchor_threshold = 1.1  # never sure: the view average
        averaged = method.teacher_prediction(inputs)
    assert not torch.allclose(averaged, plain)
    torch.testing.assert_close(
        averaged.sum(1), torch.ones_like(averaged[:, 0]))


@pytest.mark.parametrize('recipe', ['segmentation', 'cifar'])
def test_scored_prediction_is_the_pseudo_label(recipe):
    # Two views, anchor never sure: the pseudo-label is the view average,
    # which the student's own plain prediction disagrees with.
    method = build_cotta(
        recipe=recipe,
        aug_scales=(1.0, 0.5),
        anchor_threshold=1.1,
        optimizer=dict(type='SGD', lr=0.1))
    batch = make_batch()
    inputs = method.model.data_preprocessor(batch, False)['inputs']
    with torch.no_grad():
        expected = method.teacher_prediction(inputs)  # before the step
        student = method.decode(inputs)
    out = method.test_step(batch)[0]
    size = inputs.shape[2:]
    tiny = torch.finfo(expected.dtype).tiny
    expected_logits = F.interpolate(
        expected.clamp_min(tiny).log(), size=size, mode='bilinear')
    torch.testing.assert_close(out.seg_logits.data, expected_logits[0])
    assert torch.equal(out.pred_sem_seg.data[0], expected_logits.argmax(1)[0])
    student = F.interpolate(student, size=size, mode='bilinear').argmax(1)
    assert (student != expected_logits.argmax(1)).float().mean() > 0.05


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


# --- the first update against an independent re-implementation -----------
def reference_cotta_step(model, batch, recipe, scales, threshold, lr, p, seed):
    """One CoTTA step written from the paper and the authors' two recipes.

    ``model``: a copy of the source model with stock BN layers. Returns
    the pseudo-label (probabilities), the student's and the teacher's
    parameters after the step.
    """
    student, teacher, anchor = (copy.deepcopy(model) for _ in range(3))
    for net in (student, teacher, anchor):
        net.eval()  # dropout off; stock eval-mode BN: stored statistics
        if recipe == 'cifar':
            for m in net.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.forward = functools.partial(train_mode_bn, m)

    def logits_of(net, x):
        return net.decode_head(net.extract_feat(x))

    x = student.data_preprocessor(batch, False)['inputs']
    with torch.no_grad():
        plain = logits_of(teacher, x)
        size = x.shape[2:] if recipe == 'segmentation' else plain.shape[2:]

        def up(t):
            return F.interpolate(t, size=size, mode='bilinear')

        probs = []
        for s in scales:
            for flip in (False, True):
                v = x.flip(-1) if flip else x
                v = F.interpolate(v, scale_factor=s, mode='bilinear') \
                    if s != 1 else v
                out = up(logits_of(teacher, v))
                probs.append((out.flip(-1) if flip else out).softmax(1))
        average = torch.stack(probs).mean(0)
        unsure = up(logits_of(anchor, x)).softmax(1).max(1)[0] < threshold
        assert 0 < unsure.float().mean() < 1  # both branches of Eq. 4
        label = torch.where(unsure[:, None], average, up(plain).softmax(1))
    opt = torch.optim.SGD(student.parameters(), lr=lr)
    out = logits_of(student, x)
    if recipe == 'segmentation':  # hard labels, cross-entropy, full size
        loss = F.cross_entropy(up(out), label.argmax(1))
    else:  # soft labels at the decoder resolution
        loss = -(label * out.log_softmax(1)).sum(1).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    with torch.no_grad():
        for t, w in zip(teacher.parameters(), student.parameters()):
            t.copy_(0.999 * t + 0.001 * w)  # EMA (Eq. 2)
        torch.manual_seed(seed)
        for w, a in zip(student.parameters(), anchor.parameters()):
            keep = (torch.rand_like(w) < p).float()  # restore (Eq. 5-6)
            w.copy_(a * keep + w * (1 - keep))
    return label, dict(student.named_parameters()), dict(
        teacher.named_parameters())


@pytest.mark.parametrize('recipe', ['segmentation', 'cifar'])
def test_first_update_equals_reference(recipe):
    scales, lr, p, seed = (1.0, 0.5), 0.1, 0.01, 3
    model = build_model(TINY_MODEL)
    model.eval()
    source = copy.deepcopy(model)
    batch = make_batch()
    method = build_tta_method(
        dict(
            type='CoTTA',
            recipe=recipe,
            aug_scales=scales,
            restore_prob=p,
            optimizer=dict(type='SGD', lr=lr)), model)
    inputs = method.model.data_preprocessor(batch, False)['inputs']
    # Anchor threshold at the median confidence: both branches of Eq. 4.
    with torch.no_grad():
        logits = method._decode(method.anchor, inputs)
        if recipe == 'segmentation':  # confidence at the label resolution
            logits = F.interpolate(
                logits, size=inputs.shape[2:], mode='bilinear')
        threshold = float(logits.softmax(1).amax(1).median())
    method.anchor_threshold = threshold
    torch.manual_seed(seed)  # the restore draws its masks after the step
    ours = method.forward_and_adapt(inputs)
    label, student, teacher = reference_cotta_step(source, batch, recipe,
                                                   scales, threshold, lr, p,
                                                   seed)
    torch.testing.assert_close(ours.exp(), label, rtol=0, atol=1e-6)
    moved = 0
    for name, param in method.model.named_parameters():
        torch.testing.assert_close(param, student[name], rtol=0, atol=1e-6)
        moved += int(not torch.equal(param, source.state_dict()[name]))
    for name, param in method.teacher.named_parameters():
        torch.testing.assert_close(param, teacher[name], rtol=0, atol=1e-6)
    assert moved > 10


def test_unknown_recipe_lists_the_valid_ones():
    with pytest.raises(ValueError, match="'cifar', 'segmentation'"):
        build_cotta(recipe='imagenet')
