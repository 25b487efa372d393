"""A fresh optimizer per domain (CoTTA's segmentation release) or one."""
from types import SimpleNamespace

import pytest

from mmseg_ecotta.engine import AdaptationSettings, TestTimeAdaptationHook
from mmseg_ecotta.engine.adaptation_state import StreamCheckpoint
from mmseg_ecotta.tta import build_tta_method
from ..conftest import TINY_MODEL, build_model, method_cfg
from .test_methods import make_batch

# Two rounds of two domains, two batches each: three boundaries.
SEGMENTS = [(r, d) for r in range(2) for d in ('fog', 'night')]
FAST = dict(aug_scales=(1.0, ), aug_flip=False)


def adam_steps_along_the_stream(method) -> list:
    """Adam's step count after each batch, fed through the hook."""
    hook = TestTimeAdaptationHook()
    hook.settings = AdaptationSettings(
        method=dict(type=type(method).__name__), checkpoint_interval=0)
    hook.checkpoint = StreamCheckpoint('state.pth', 0)
    hook.method = method
    hook.results = SimpleNamespace(collapsed=False)  # nothing collapses
    runner = SimpleNamespace(
        hooks=[hook], test_evaluator=SimpleNamespace(metrics=[]))
    param = method.named_params[0][1]
    steps = []
    for i, (rnd, domain) in enumerate(s for s in SEGMENTS for _ in range(2)):
        batch = make_batch(i)
        batch['data_samples'][0].set_metainfo(dict(round=rnd, domain=domain))
        hook.before_test_iter(runner, i, batch)
        method.test_step(batch)
        steps.append(int(method.optimizer.state[param]['step']))
    return steps


# (method, settings, whether the optimizer restarts per domain): CoTTA's
# segmentation release, the option that keeps one, CoTTA's CIFAR code,
# CoTTA's single_gpu_tent, tent's own code.
CASES = [
    ('CoTTA', FAST, True),
    ('CoTTA', dict(FAST, optimizer_per_domain=False), False),
    ('CoTTA', dict(FAST, recipe='cifar'), False),
    ('Tent', dict(recipe='cotta'), True),
    ('Tent', {}, False),
]


@pytest.mark.parametrize('name,kwargs,per_domain', CASES)
def test_optimizer_state_restarts_at_each_domain_boundary(
        name, kwargs, per_domain):
    model = build_model(TINY_MODEL)
    model.eval()
    method = build_tta_method(method_cfg(name, **kwargs), model)
    assert method.optimizer_per_domain == per_domain
    before = {n: p.clone() for n, p in method.named_params}
    steps = adam_steps_along_the_stream(method)
    assert steps == ([1, 2] * 4 if per_domain else list(range(1, 9)))
    # Only the optimizer restarts: the weights carry on adapting.
    assert method.stats['updates'] == 8 and method.stats['resets'] == 0
    assert any(not p.equal(before[n]) for n, p in method.named_params)
