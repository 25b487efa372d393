"""Kill a real run mid-stream, resume it, get the uninterrupted results."""
import json
import os
import os.path as osp
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from mmseg_ecotta.engine import adaptation_state as state_io
from mmseg_ecotta.engine.adaptation_state import (STATE_FILE, STATE_VERSION,
                                                  load_state,
                                                  save_state_atomic)
from mmseg_ecotta.evaluation import ContinualIoUMetric
from ..conftest import (REPO, TINY_META_MODEL, TINY_MODEL, ShellPayload,
                        assert_refused_before_running, build_model)

CONFIGS = dict(
    Tent='tent_deeplabv3plus_r18-tiny_synthetic-stream.py',
    EcoTTA='ecotta_deeplabv3plus_r18-tiny_meta_synthetic-stream.py',
    CoTTA='cotta_deeplabv3plus_r18-tiny_synthetic-stream.py')
# CoTTA's restore draws from the global RNG every step: the RNG state must
# be resumed exactly. Two views instead of 14 keep it quick.
METHOD_OPTIONS = dict(CoTTA=['custom_hooks.0.method.aug_scales=[1.0]'])
ROUNDS, PER_DOMAIN, INTERVAL = 2, 3, 4
STREAM = ROUNDS * 4 * PER_DOMAIN
# Sleeps after every step when THROTTLE_SECONDS is set, so that the test
# can catch the run mid-stream; sleeping changes no number.
THROTTLE_HOOK = '''
import os, time
from mmengine.hooks import Hook
from mmseg.registry import HOOKS


@HOOKS.register_module()
class ThrottleHook(Hook):
    def after_test_iter(self, runner, batch_idx, data_batch=None,
                        outputs=None):
        time.sleep(float(os.environ.get('THROTTLE_SECONDS', 0)))
'''


@pytest.fixture
def stream_root(tmp_path) -> str:
    from ..conftest import write_acdc
    return write_acdc(
        str(tmp_path / 'acdc'),
        {c: PER_DOMAIN
         for c in ('fog', 'night', 'rain', 'snow')})


def _config(tmp_path, name: str) -> str:
    (tmp_path / 'throttle_hook.py').write_text(THROTTLE_HOOK)
    path = tmp_path / f'{name}.py'
    base = osp.join(REPO, 'configs/tta/synthetic', CONFIGS[name])
    path.write_text(
        f"_base_ = '{base}'\n"
        "custom_imports = dict(imports=['mmseg_ecotta', 'throttle_hook'], "
        'allow_failed_imports=False)\n'
        "custom_hooks = [_base_.custom_hooks[0], dict(type='ThrottleHook')]\n"
        f'randomness = dict(seed=3)\n')
    return str(path)


def _command(config, ckpt, work_dir, root, name, *extra, options=()):
    return [
        sys.executable, 'tools/test_tta.py', config, ckpt, '--work-dir',
        work_dir, *extra, '--cfg-options',
        f'test_dataloader.dataset.dataset_template.data_root={root}',
        f'test_dataloader.dataset.rounds={ROUNDS}',
        f'custom_hooks.0.checkpoint_interval={INTERVAL}',
        *METHOD_OPTIONS.get(name, []), *options
    ]


def _env(tmp_path, throttle: float = 0.0) -> dict:
    return dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(tmp_path), REPO]),
        THROTTLE_SECONDS=str(throttle))


def _position(path: str) -> int:
    try:
        return torch.load(path, weights_only=True)['position']
    except FileNotFoundError:
        return 0


def _results(work_dir: str) -> dict:
    with open(osp.join(work_dir, 'tta_results.json')) as f:
        return json.load(f)


@pytest.mark.parametrize('name', ['Tent', 'EcoTTA', 'CoTTA'])
def test_killed_and_resumed_run_equals_uninterrupted_run(
        name, tmp_path, stream_root):
    model = build_model(TINY_META_MODEL if name == 'EcoTTA' else TINY_MODEL)
    ckpt = str(tmp_path / 'tiny.pth')
    torch.save({'state_dict': model.state_dict()}, ckpt)
    config = _config(tmp_path, name)
    full, killed = str(tmp_path / 'full'), str(tmp_path / 'killed')

    done = subprocess.run(
        _command(config, ckpt, full, stream_root, name),
        cwd=REPO,
        env=_env(tmp_path),
        capture_output=True,
        text=True)
    assert done.returncode == 0, done.stderr[-3000:]

    proc = subprocess.Popen(
        _command(config, ckpt, killed, stream_root, name),
        cwd=REPO,
        env=_env(tmp_path, throttle=0.3),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    state_path = osp.join(killed, STATE_FILE)
    deadline = time.time() + 300
    while _position(state_path) < STREAM // 3 and time.time() < deadline:
        assert proc.poll() is None, 'the run ended before it was killed'
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    position = _position(state_path)
    assert STREAM // 3 <= position < STREAM
    assert not _results(killed)['complete']
    # What a kill during a state write leaves; the resume removes it.
    stale = osp.join(killed, f'.{STATE_FILE}.k1ll3d.tmp')
    open(stale, 'wb').close()

    resumed = subprocess.run(
        _command(config, ckpt, killed, stream_root, name, '--resume'),
        cwd=REPO,
        env=_env(tmp_path),
        capture_output=True,
        text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f'resumed from {state_path} at batch {position}' in (
        resumed.stdout + resumed.stderr)
    assert not osp.exists(stale)
    expected, actual = _results(full), _results(killed)
    assert actual['complete']
    assert len(actual['segments']) == 4 * ROUNDS
    for want, got in zip(expected['segments'], actual['segments']):
        # Bit-identical: same floats, not approximately equal ones.
        assert (got['round'], got['domain']) == (want['round'], want['domain'])
        assert got['mIoU'] == want['mIoU']
        # (as JSON text: classes absent from a segment are NaN != NaN)
        assert json.dumps(got['per_class_iou']) == json.dumps(
            want['per_class_iou'])
        assert got['num_images'] == want['num_images']
    assert actual['adaptation'] == expected['adaptation']


def _run(tmp_path, config, ckpt, work_dir, root, *extra, options=()):
    return subprocess.run(
        _command(
            config, ckpt, work_dir, root, 'Tent', *extra, options=options),
        cwd=REPO,
        env=_env(tmp_path),
        capture_output=True,
        text=True)


def test_resume_refuses_another_method_or_stream(tmp_path, stream_root):
    ckpt = str(tmp_path / 'tiny.pth')
    torch.save({'state_dict': build_model(TINY_MODEL).state_dict()}, ckpt)
    config = _config(tmp_path, 'Tent')
    work_dir = str(tmp_path / 'work')
    missing = _run(tmp_path, config, ckpt, work_dir, stream_root, '--resume')
    assert missing.returncode != 0
    assert 'no adaptation state' in missing.stderr
    assert 'run without --resume' in missing.stderr
    # A fresh run also removes what interrupted writes left, only that.
    stale = osp.join(work_dir, f'.{STATE_FILE}.abc123.tmp')
    other = osp.join(work_dir, '.notes.tmp')
    for path in (stale, other):
        open(path, 'wb').close()
    assert _run(tmp_path, config, ckpt, work_dir, stream_root).returncode == 0
    assert not osp.exists(stale) and osp.exists(other)
    other_method = _run(
        tmp_path,
        config,
        ckpt,
        work_dir,
        stream_root,
        '--resume',
        options=['custom_hooks.0.method.lean_backward=True'])
    assert other_method.returncode != 0
    assert 'was written by a different run (method' in other_method.stderr
    longer = _run(
        tmp_path,
        config,
        ckpt,
        work_dir,
        stream_root,
        '--resume',
        options=['test_dataloader.dataset.rounds=3'])
    assert 'stream_length: saved 24 vs now 36' in longer.stderr


def test_state_file_is_replaced_atomically(tmp_path, monkeypatch):
    path = str(tmp_path / STATE_FILE)
    save_state_atomic(dict(position=1), path)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # a kill in the middle of writing

    monkeypatch.setattr(torch, 'save', crash)
    with pytest.raises(KeyboardInterrupt):
        save_state_atomic(dict(position=2), path)
    assert torch.load(path)['position'] == 1  # the previous one, intact
    assert os.listdir(tmp_path) == [STATE_FILE]  # no temp file left


def test_stale_temporaries_of_our_naming_are_removed(tmp_path):
    path = str(tmp_path / STATE_FILE)
    save_state_atomic(dict(position=1), path)
    stale = [tmp_path / f'.{STATE_FILE}.x{i}.tmp' for i in range(2)]
    kept = [tmp_path / '.other.pth.x0.tmp', tmp_path / f'{STATE_FILE}.tmp']
    for f in stale + kept:
        f.write_bytes(b'')
    assert sorted(state_io.remove_stale_temporaries(path)) == sorted(
        map(str, stale))
    assert sorted(os.listdir(tmp_path)) == sorted([STATE_FILE] +
                                                  [f.name for f in kept])


def test_state_round_trips_as_plain_data(tmp_path):
    """RNG states and metric results survive the safe loader exactly."""
    np.random.seed(7)
    random.seed(7)
    np.random.normal()  # leaves a cached Gaussian in numpy's state
    metric = ContinualIoUMetric()
    metric.results = [(0, 'fog', np.arange(4, dtype=np.float64) / 3),
                      (1, 'snow', np.ones((2, 3), dtype=np.int64))]
    path = str(tmp_path / STATE_FILE)
    fingerprint = dict(model='m')
    save_state_atomic(
        dict(
            version=STATE_VERSION,
            fingerprint=fingerprint,
            rng=state_io.capture_rng_state(),
            metric_results=state_io.metric_results([metric])), path)
    assert torch.serialization.get_unsafe_globals_in_checkpoint(path) == []
    expected = (np.random.normal(), np.random.randint(1 << 30),
                random.random(), torch.rand(3))
    state = load_state(path, fingerprint)
    state_io.restore_rng_state(state['rng'])
    got = (np.random.normal(), np.random.randint(1 << 30), random.random(),
           torch.rand(3))
    assert got[:3] == expected[:3] and torch.equal(got[3], expected[3])
    saved = metric.results
    metric.results = []
    state_io.restore_metric_results([metric], state['metric_results'])
    for (r, d, areas), (r0, d0, areas0) in zip(metric.results, saved):
        assert (r, d) == (r0, d0) and areas.dtype == areas0.dtype
        assert np.array_equal(areas, areas0)


def test_planted_state_file_is_refused_before_running(tmp_path):
    marker, path = str(tmp_path / 'pwned'), str(tmp_path / STATE_FILE)
    fingerprint = dict(model='m')
    torch.save(
        dict(
            version=STATE_VERSION,
            fingerprint=fingerprint,
            note=ShellPayload(marker)), path)
    assert_refused_before_running(lambda: load_state(path, fingerprint), path,
                                  marker)


def test_planted_state_file_loads_with_the_opt_in(tmp_path, unsafe_load):
    marker, path = str(tmp_path / 'pwned'), str(tmp_path / STATE_FILE)
    fingerprint = dict(model='m')
    torch.save(
        dict(
            version=STATE_VERSION,
            fingerprint=fingerprint,
            note=ShellPayload(marker)), path)
    assert load_state(path, fingerprint)['fingerprint'] == fingerprint
    assert osp.exists(marker)
