"""The non-finite guard: a step that breaks the weights is undone."""
import copy

import pytest
import torch

from mmseg_ecotta.tta.step_guard import StepGuard
from .test_methods import build_method, make_batch

BATCHES = 6


def predictions(method, batches: int = BATCHES) -> list:
    """Predicted label maps of ``batches`` test steps, as the loop runs."""
    with torch.no_grad():  # as mmengine's TestLoop calls it
        return [
            method.test_step(make_batch(seed))[0].pred_sem_seg.data
            for seed in range(batches)
        ]


def all_finite(method) -> bool:
    return all(bool(torch.isfinite(p).all()) for _, p in method.named_params)


@pytest.mark.parametrize('name', ['Tent', 'EcoTTA'])
def test_far_too_large_lr_is_undone_and_predictions_recover(name):
    # SGD at lr=1e38 gives finite weights of about 1e37 that make the next
    # forward overflow: that step is undone and the image predicted again.
    torch.manual_seed(0)
    broken = build_method(name, optimizer=dict(type='SGD', lr=1e38))
    torch.manual_seed(0)
    still = build_method(name, optimizer=dict(type='SGD', lr=0.0))
    got, want = predictions(broken), predictions(still)
    assert all_finite(broken)
    # Every prediction comes from the source weights, as without updates:
    # none from the overflowing ones (those would be one class: argmax
    # of NaN).
    for ours, reference in zip(got, want):
        assert torch.equal(ours, reference)
    assert broken.stats['undone_updates'] == BATCHES // 2
    assert broken.stats['skipped_nonfinite'] == BATCHES // 2


def test_cotta_teacher_is_undone_with_the_student():
    kwargs = dict(aug_scales=[1.0], aug_flip=False, restore_prob=0.0)
    torch.manual_seed(0)
    broken = build_method(
        'CoTTA', optimizer=dict(type='SGD', lr=1e38), **kwargs)
    torch.manual_seed(0)
    still = build_method('CoTTA', optimizer=dict(type='SGD', lr=0.0), **kwargs)
    got, want = predictions(broken), predictions(still)
    assert all(
        bool(torch.isfinite(p).all()) for p in broken.teacher.parameters())
    for ours, reference in zip(got, want):
        # The teacher's EMA of an unchanged student rounds differently.
        assert (ours == reference).float().mean() > 0.99
    assert broken.stats['undone_updates'] == BATCHES // 2


def test_nan_lr_is_undone_at_once():
    method = build_method(
        'Tent', optimizer=dict(type='SGD', lr=float('nan'), momentum=0.9))
    before = copy.deepcopy(method.model.state_dict())
    predictions(method, 2)
    assert method.stats['undone_updates'] == 2
    assert method.stats['updates'] == 0
    assert not method.optimizer.state  # the momentum it created is gone
    for key, value in method.model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_weights_broken_beyond_undo_are_reset_to_the_source():
    torch.manual_seed(0)
    method = build_method('Tent', reset_after_nonfinite=2)
    torch.manual_seed(0)
    reference = build_method('Tent')
    source = copy.deepcopy(method.model.state_dict())
    name, param = method.named_params[0]
    with torch.no_grad():
        param.fill_(float('inf'))  # no step did it: nothing to undo
    outputs = predictions(method, 3)
    assert method.stats['nonfinite_resets'] == 1
    assert method.stats['resets'] == 1
    assert all_finite(method)
    # The second step reset and predicted again with the source weights;
    # the third adapts.
    with torch.no_grad():
        expected = reference.test_step(make_batch(1))[0].pred_sem_seg.data
    assert torch.equal(outputs[1], expected)
    assert method.stats['updates'] == 1
    assert not torch.equal(method.model.state_dict()[name], source[name])


def test_reset_after_nonfinite_must_be_a_count():
    with pytest.raises(ValueError, match='reset_after_nonfinite=-1'):
        build_method('Tent', reset_after_nonfinite=-1)


def test_guard_restores_parameters_and_adam_state_exactly():
    param = torch.nn.Parameter(torch.arange(4.))
    other = torch.ones(2)
    optimizer = torch.optim.Adam([param], lr=0.1)
    guard = StepGuard([param, other], optimizer)
    guard.save()
    param.grad = torch.ones(4)
    optimizer.step()  # creates Adam's state
    assert guard.restore()
    assert torch.equal(param.detach(), torch.arange(4.))
    assert not optimizer.state
    optimizer.step()
    state = copy.deepcopy(optimizer.state[param])
    guard.save()
    optimizer.step()
    with torch.no_grad():
        other.mul_(3)
    assert guard.finite()
    with torch.no_grad():
        param[0] = float('nan')
    assert not guard.finite()
    assert guard.restore()
    assert not guard.restore()  # once only
    for key, value in state.items():
        assert torch.equal(optimizer.state[param][key], value), key
    assert torch.equal(other, torch.ones(2))


def test_an_optimizer_step_that_fails_names_the_learning_rate():
    # Adam's step size lr / (1 - beta1) overflows float32 at lr=1e38.
    method = build_method('Tent', optimizer=dict(type='Adam', lr=1e38))
    before = copy.deepcopy(method.model.state_dict())
    with pytest.raises(RuntimeError, match=r'lr=1e\+38'):
        predictions(method, 1)
    for key, value in method.model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert not method.optimizer.state
