"""Kill a real run mid-stream, resume it, get the uninterrupted results.

Only the same run is resumed; a run with a bad file removed continues by
sample identity.
"""
import glob
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
                        assert_refused_before_running, build_model,
                        synthetic_config)

CONFIGS = dict(
    Tent=synthetic_config('tent'),
    EcoTTA=synthetic_config('ecotta'),
    CoTTA=synthetic_config('cotta'))
# CoTTA's restore draws from the global RNG every step: the RNG state must
# be resumed exactly. Two views instead of 14 keep it quick.
METHOD_OPTIONS = dict(CoTTA=['adaptation.method.aug_scales=[1.0]'])
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
    base = CONFIGS[name]
    path.write_text(
        f"_base_ = '{base}'\n"
        "custom_imports = dict(imports=['mmseg_ecotta', 'throttle_hook'], "
        'allow_failed_imports=False)\n'
        "custom_hooks = [dict(type='TestTimeAdaptationHook'), "
        "dict(type='ThrottleHook')]\n"
        f'randomness = dict(seed=3)\n')
    return str(path)


def _command(config, ckpt, work_dir, root, name, *extra, options=()):
    return [
        sys.executable, 'tools/test_tta.py', config, ckpt, '--work-dir',
        work_dir, *extra, '--cfg-options',
        f'test_dataloader.dataset.dataset_template.data_root={root}',
        f'test_dataloader.dataset.rounds={ROUNDS}',
        f'adaptation.checkpoint_interval={INTERVAL}',
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
    # What a kill during a state or a results write leaves; the resume
    # removes it.
    stale = osp.join(killed, f'.{STATE_FILE}.k1ll3d.tmp')
    open(stale, 'wb').close()
    stale_results = osp.join(killed, '.tta_results.json.k1ll3d.tmp')
    with open(stale_results, 'w') as f:
        f.write('{"complete": ')

    resumed = subprocess.run(
        _command(config, ckpt, killed, stream_root, name, '--resume'),
        cwd=REPO,
        env=_env(tmp_path),
        capture_output=True,
        text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f'resumed from {state_path} at batch {position}' in (
        resumed.stdout + resumed.stderr)
    assert not osp.exists(stale) and not osp.exists(stale_results)
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


@pytest.fixture(scope='module')
def finished_run(tmp_path_factory) -> dict:
    """A finished Tent run whose state the refusal tests try to resume."""
    from ..conftest import write_acdc
    tmp = tmp_path_factory.mktemp('finished')
    root = write_acdc(
        str(tmp / 'acdc'),
        {c: PER_DOMAIN
         for c in ('fog', 'night', 'rain', 'snow')})
    run = dict(tmp=tmp, root=root, config=_config(tmp, 'Tent'))
    for name in ('ckpt', 'other_ckpt'):
        run[name] = str(tmp / f'{name}.pth')
        torch.save({'state_dict': build_model(TINY_MODEL).state_dict()},
                   run[name])
    run['work_dir'] = str(tmp / 'work')
    missing = _run(tmp, run['config'], run['ckpt'], run['work_dir'], root,
                   '--resume')
    assert missing.returncode != 0
    assert 'no adaptation state' in missing.stderr
    assert 'run without --resume' in missing.stderr
    done = _run(tmp, run['config'], run['ckpt'], run['work_dir'], root)
    assert done.returncode == 0, done.stderr[-3000:]
    return run


# What each refused resume changes, and how the refusal names it. The
# checkpoint and the domain order alone (what the issue found resumed
# silently); the other fields together, in one run (each field alone is
# unit-tested in test_run_identity.py).
REFUSED = dict(
    checkpoint=([], ['checkpoint (the starting weights differ: sha256 ']),
    domains=(['test_dataloader.dataset.domains=[night,fog,rain,snow]'], [
        "domains (saved ['fog', 'night', 'rain', 'snow'], now "
        "['night', 'fog', 'rain', 'snow'])"
    ]),
    configs=([
        'adaptation.method.lean_backward=True',
        'test_dataloader.dataset.rounds=3',
        'test_dataloader.dataset.dataset_template.pipeline.1.scale=(128,64)',
        'test_evaluator.ignore_index=0', 'adaptation.reset_on_collapse=True',
        'adaptation.check_checkpoint=False'
    ], [
        'method (lean_backward: new, True)',
        'reset_on_collapse (saved False, now True)',
        'check_checkpoint (saved True, now False)', 'rounds (saved 2, now 3)',
        'pipeline ([0][1:Resize].scale: saved [256, 128], now [128, 64])',
        'evaluator (ignore_index: new, 0)'
    ]))


@pytest.mark.parametrize('change', list(REFUSED))
def test_resume_of_another_run_is_refused_naming_what_differs(
        change, finished_run):
    options, messages = REFUSED[change]
    run = finished_run
    ckpt = run['other_ckpt'] if change == 'checkpoint' else run['ckpt']
    refused = _run(
        run['tmp'],
        run['config'],
        ckpt,
        run['work_dir'],
        run['root'],
        '--resume',
        options=options)
    assert refused.returncode != 0
    error = refused.stderr.strip().splitlines()[-1]
    assert 'was written by a different run: ' + messages[0] in error
    assert all(m in error for m in messages), error
    assert 'give another --work-dir' in error
    # One phrase per field, no config dump (that was about 1 KB).
    state = osp.join(run['work_dir'], STATE_FILE)
    assert len(error) - len(state) < 150 + 120 * len(messages), error


# Crafted states: what each changes in a real one, and the refusal.
CRAFTED = dict(
    out_of_stream=(dict(position=-5, consumed=10**9),
                   'position -5, 1000000000 samples consumed, in a stream '
                   f'of {STREAM} samples'),
    no_fingerprint=(dict(fingerprint=[1]), 'it holds no run fingerprint'),
    wrong_method_state=(dict(method=dict(params=[1])), 'KeyError'),
)


@pytest.mark.parametrize('craft', list(CRAFTED))
def test_crafted_state_is_refused_naming_the_file(craft, finished_run,
                                                  tmp_path):
    changes, message = CRAFTED[craft]
    run = finished_run
    state = torch.load(
        osp.join(run['work_dir'], STATE_FILE), weights_only=True)
    state.update(changes)
    work_dir = str(tmp_path / 'work')
    path = osp.join(work_dir, STATE_FILE)
    save_state_atomic(state, path)
    refused = _run(run['tmp'], run['config'], run['ckpt'], work_dir,
                   run['root'], '--resume')
    assert refused.returncode != 0
    error = refused.stderr.strip().splitlines()[-1]
    assert error.startswith('ValueError: adaptation state '
                            f"'{path}' is malformed: "), error
    assert message in error and 'run without --resume' in error
    assert not osp.exists(osp.join(work_dir, 'tta_results.json'))


def test_removing_a_bad_file_and_resuming_equals_a_run_without_it(
        tmp_path, stream_root):
    # The recovery of docs/user_guides/resume_and_reliability.md: a bad
    # file stops the run naming it; remove it and --resume. The stream then
    # continues by sample identity.
    ckpt = str(tmp_path / 'tiny.pth')
    torch.save({'state_dict': build_model(TINY_MODEL).state_dict()}, ckpt)
    config = _config(tmp_path, 'Tent')
    images = sorted(
        glob.glob(osp.join(stream_root, 'rgb_anon/night/train/*/*.png')))
    image = images[1]  # stream position 4: after the boundary's state
    label = image.replace('rgb_anon', 'gt',
                          1).replace('_rgb_anon.png', '_gt_labelTrainIds.png')
    with open(label, 'rb') as f:
        data = f.read()
    with open(label, 'wb') as f:
        f.write(data[:len(data) // 2])
    work_dir = str(tmp_path / 'work')
    crashed = _run(tmp_path, config, ckpt, work_dir, stream_root)
    assert crashed.returncode != 0
    assert f'label {label} is corrupt or truncated' in crashed.stderr
    assert _position(osp.join(work_dir, STATE_FILE)) == PER_DOMAIN

    os.remove(label)
    os.remove(image)
    resumed = _run(tmp_path, config, ckpt, work_dir, stream_root, '--resume')
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    log = resumed.stdout + resumed.stderr
    assert 'resuming without 1 sample removed since the state was saved' \
        in log and f'night: {image}' in log
    fresh_dir = str(tmp_path / 'fresh')
    fresh = _run(tmp_path, config, ckpt, fresh_dir, stream_root)
    assert fresh.returncode == 0, fresh.stderr[-3000:]

    expected, actual = _results(fresh_dir), _results(work_dir)
    assert actual['complete']
    assert actual['removed_samples'] == [dict(domain='night', sample=image)]
    assert expected['removed_samples'] == []
    assert [s['num_images'] for s in actual['segments']
            ] == [PER_DOMAIN, PER_DOMAIN - 1, PER_DOMAIN, PER_DOMAIN] * ROUNDS
    for want, got in zip(expected['segments'], actual['segments']):
        assert got['mIoU'] == want['mIoU']
        assert json.dumps(got['per_class_iou']) == json.dumps(
            want['per_class_iou'])
    assert actual['adaptation'] == expected['adaptation']


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
    fingerprint = dict(model='m', domains=['fog'], samples=[['a.png']])
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
    fingerprint = dict(model='m', domains=['fog'], samples=[['a.png']])
    torch.save(
        dict(
            version=STATE_VERSION,
            fingerprint=fingerprint,
            note=ShellPayload(marker)), path)
    assert_refused_before_running(lambda: load_state(path, fingerprint), path,
                                  marker)


def test_planted_state_file_loads_with_the_opt_in(tmp_path, unsafe_load):
    marker, path = str(tmp_path / 'pwned'), str(tmp_path / STATE_FILE)
    fingerprint = dict(model='m', domains=['fog'], samples=[['a.png']])
    torch.save(
        dict(
            version=STATE_VERSION,
            fingerprint=fingerprint,
            note=ShellPayload(marker)), path)
    assert load_state(path, fingerprint)['fingerprint'] == fingerprint
    assert osp.exists(marker)
