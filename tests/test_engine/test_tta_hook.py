"""The TTA hook inside mmengine's test machinery, end to end."""
import json
import os
import os.path as osp
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.runner import Runner

from mmseg_ecotta import safe_load
from mmseg_ecotta.engine import (AdaptationSettings, TestTimeAdaptationHook,
                                 TTAResultsHook)
from mmseg_ecotta.evaluation import ContinualIoUMetric, format_round_table
from mmseg_ecotta.registry import TTA_METHODS
from mmseg_ecotta.tta import build_tta_method
from mmseg_ecotta.tta.tent import Tent
from mmseg_ecotta.utils import load_config
from ..conftest import REPO, TINY_MODEL, build_model, synthetic_config

TENT = synthetic_config('tent')
MMSEG_TEST = osp.join(
    osp.dirname(__import__('mmseg').__file__), '.mim', 'tools', 'test.py')
DOMAINS = ['fog', 'night', 'rain', 'snow']


@pytest.fixture
def checkpoint(tmp_path) -> str:
    path = str(tmp_path / 'tiny.pth')
    torch.save({'state_dict': build_model(TINY_MODEL).state_dict()}, path)
    return path


def run_tool(tool, config, ckpt, work_dir, acdc_root, *options):
    cmd = [
        sys.executable, tool, config, ckpt, '--work-dir', work_dir,
        '--cfg-options', f'test_dataloader.dataset.dataset_template.'
        f'data_root={acdc_root}', 'test_dataloader.dataset.rounds=2',
        'test_dataloader.num_workers=0', *options
    ]
    # One thread: runs compared to the last digit must not depend on how a
    # busy machine splits a reduction between threads.
    return subprocess.run(
        cmd,
        cwd=REPO,
        capture_output=True,
        text=True,
        env=dict(os.environ, OMP_NUM_THREADS='1'))


@pytest.mark.parametrize('tool', ['ours', 'mmseg'])
def test_adapting_run_with_either_test_tool(tool, tmp_path, acdc_root,
                                            checkpoint):
    script = 'tools/test_tta.py' if tool == 'ours' else MMSEG_TEST
    work_dir = str(tmp_path / 'work')
    result = run_tool(script, TENT, checkpoint, work_dir, acdc_root)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(osp.join(work_dir, 'tta_results.json')) as f:
        results = json.load(f)
    assert results['method'] == 'Tent' and results['complete']
    assert results['domains'] == DOMAINS and results['rounds'] == 2
    order = [(s['round'], s['domain']) for s in results['segments']]
    assert order == [(r, d) for r in range(2) for d in DOMAINS]
    assert all(s['num_images'] == 2 for s in results['segments'])
    assert results['adaptation']['updates'] == 16
    assert results['adaptation']['update_fraction'] == 1.0
    assert results['adaptation']['resets'] == 0  # continual by default
    assert results['cost']['trainable_params'] > 0
    assert results['cost']['peak_memory_bytes'] > 0
    assert 'Round' in result.stdout + result.stderr  # the table


def test_episodic_option_resets_at_each_domain(tmp_path, acdc_root,
                                               checkpoint):
    work_dir = str(tmp_path / 'work')
    result = run_tool('tools/test_tta.py', TENT, checkpoint, work_dir,
                      acdc_root, 'adaptation.episodic=True')
    assert result.returncode == 0, result.stderr[-3000:]
    with open(osp.join(work_dir, 'tta_results.json')) as f:
        assert json.load(f)['adaptation']['resets'] == 7


def test_checkpoint_of_another_architecture_is_refused(tmp_path, acdc_root):
    other = build_model(TINY_MODEL, **{'decode_head.channels': 32})
    path = str(tmp_path / 'other.pth')
    torch.save({'state_dict': other.state_dict()}, path)
    result = run_tool('tools/test_tta.py', TENT, path, str(tmp_path / 'w'),
                      acdc_root)
    assert result.returncode != 0
    assert 'does not fit the model' in result.stderr
    assert 'shape mismatches' in result.stderr


def test_missing_checkpoint_and_missing_hook_are_clear(tmp_path):
    result = subprocess.run(
        [sys.executable, 'tools/test_tta.py', TENT, 'nope.pth'],
        cwd=REPO,
        capture_output=True,
        text=True)
    assert "checkpoint 'nope.pth' does not exist" in result.stderr
    config = tmp_path / 'no_hook.py'
    config.write_text(f"_base_ = '{TENT}'\ncustom_hooks = []\n")
    ckpt = tmp_path / 'x.pth'
    ckpt.write_bytes(b'')
    result = subprocess.run(
        [sys.executable, 'tools/test_tta.py',
         str(config),
         str(ckpt)],
        cwd=REPO,
        capture_output=True,
        text=True)
    assert 'has no TestTimeAdaptationHook' in result.stderr
    assert "'EcoTTA'" in result.stderr


def test_metric_matches_hand_computed_confusion_matrix():
    metric = ContinualIoUMetric()
    metric.dataset_meta = dict(classes=('a', 'b', 'c'))
    rng = np.random.default_rng(0)
    samples, expected = [], {}
    for round_idx in range(2):
        for domain in ('fog', 'night'):
            confusion = np.zeros((3, 3))
            for _ in range(2):
                label = rng.integers(0, 4, (6, 5))  # 3 = ignored below
                label[label == 3] = 255
                pred = rng.integers(0, 3, (6, 5))
                valid = label != 255
                np.add.at(confusion, (label[valid], pred[valid]), 1)
                samples.append(
                    dict(
                        round=round_idx,
                        domain=domain,
                        pred_sem_seg=dict(data=torch.from_numpy(pred)[None]),
                        gt_sem_seg=dict(data=torch.from_numpy(label)[None])))
            tp = np.diag(confusion)
            iou = tp / (confusion.sum(0) + confusion.sum(1) - tp)
            expected[(round_idx, domain)] = np.nanmean(iou) * 100
    metric.process({}, samples)
    metrics = metric.compute_metrics(metric.results)
    for (round_idx, domain), miou in expected.items():
        key = f'round{round_idx + 1}/{domain}/mIoU'
        assert metrics[key] == pytest.approx(miou)
    assert metrics['mIoU'] == pytest.approx(np.mean(list(expected.values())))
    table = format_round_table(metric.last_summary)
    header = [c.strip() for c in table.splitlines()[0].split(' | ')]
    assert header == ['Round', 'fog', 'night', 'Mean']


def test_label_size_mismatch_names_the_image():
    metric = ContinualIoUMetric()
    metric.dataset_meta = dict(classes=('a', 'b'))
    sample = dict(
        img_path='x/y.png',
        pred_sem_seg=dict(data=torch.zeros(1, 4, 4)),
        gt_sem_seg=dict(data=torch.zeros(1, 5, 4)))
    with pytest.raises(ValueError, match='x/y.png'):
        metric.process({}, [sample])


def test_collapsed_predictions_are_reported():
    metric = ContinualIoUMetric()
    metric.dataset_meta = dict(classes=('a', 'b', 'c'))
    label = torch.randint(0, 3, (1, 10, 10))
    healthy = torch.randint(0, 3, (1, 10, 10))
    collapsed = torch.zeros(1, 10, 10, dtype=torch.long)
    metric.process({}, [
        dict(
            domain='fog',
            pred_sem_seg=dict(data=healthy),
            gt_sem_seg=dict(data=label)),
        dict(
            domain='night',
            pred_sem_seg=dict(data=collapsed),
            gt_sem_seg=dict(data=label))
    ])
    summary = metric.summary()
    assert [s['collapsed'] for s in summary['segments']] == [False, True]
    assert summary['segments'][1]['dominant_class'] == 'a'
    assert summary['collapsed_segments'] == 1


class ListLogger:
    """Collects what a hook logs."""

    def __init__(self) -> None:
        self.infos, self.warnings = [], []

    def info(self, message: str) -> None:
        self.infos.append(message)

    def warning(self, message: str) -> None:
        self.warnings.append(message)


def test_a_collapse_in_the_last_domain_is_logged(tmp_path):
    metric = ContinualIoUMetric()
    metric.dataset_meta = dict(classes=('a', 'b', 'c'))
    label = torch.randint(0, 3, (1, 10, 10))
    metric.process({}, [
        dict(
            domain=domain,
            pred_sem_seg=dict(data=pred),
            gt_sem_seg=dict(data=label))
        for domain, pred in [('fog', torch.randint(0, 3, (
            1, 10, 10))), ('night', torch.zeros(1, 10, 10).long())]
    ])
    metric.compute_metrics(metric.results)  # the end of the stream
    tta = TestTimeAdaptationHook()
    tta.settings = AdaptationSettings(method=dict(type='Source'))
    tta.method = build_tta_method(
        dict(type='Source'),
        build_model(TINY_MODEL).eval())
    hook = TTAResultsHook()
    hook.tta, hook.metric = tta, metric
    logger = ListLogger()
    runner = SimpleNamespace(
        logger=logger,
        work_dir=str(tmp_path),
        cfg=SimpleNamespace(filename='x.py'),
        _load_from=None)
    hook.after_test_epoch(runner)
    assert any(m.startswith('round 1 night: mIoU') for m in logger.infos)
    assert logger.warnings == [
        'predictions collapsed in round 1 night: 100% of the pixels are a'
    ]
    with open(osp.join(tmp_path, 'tta_results.json')) as f:
        assert json.load(f)['segments'][1]['collapsed']


class NaNGradientTent(Tent):
    """Tent whose every other step has a finite loss and a NaN gradient."""

    def loss(self, logits, inputs):
        loss = super().loss(logits, inputs)
        if self.stats['steps'] % 2 == 0:
            # d sqrt(u)/du is infinite at u = 0: the gradient is NaN.
            loss = loss + torch.sqrt(logits.sum() * 0.0)
        return loss


@pytest.fixture
def nan_gradient_tent():
    # Registered only for this test: the generic method tests are
    # parametrized over the registry.
    TTA_METHODS.register_module(module=NaNGradientTent)
    yield
    TTA_METHODS._module_dict.pop('NaNGradientTent')


def test_skipped_non_finite_updates_are_counted_in_the_results(
        tmp_path, acdc_root, checkpoint, nan_gradient_tent):
    cfg = load_config(
        TENT, {
            'test_dataloader.dataset.dataset_template.data_root': acdc_root,
            'test_dataloader.dataset.rounds': 1,
            'test_dataloader.num_workers': 0,
            'test_dataloader.persistent_workers': False,
            'adaptation.method.type': 'NaNGradientTent',
            'adaptation.checkpoint_interval': 0
        }, str(tmp_path / 'work'))
    cfg.load_from = checkpoint
    Runner.from_cfg(cfg).test()
    with open(osp.join(tmp_path, 'work', 'tta_results.json')) as f:
        adaptation = json.load(f)['adaptation']
    assert adaptation['skipped_nonfinite'] == 4  # of 8 steps
    assert adaptation['updates'] == 4
    assert adaptation['update_fraction'] == 0.5


def test_class_table_has_a_row_per_class_and_a_column_per_domain():
    from mmseg_ecotta.evaluation import format_class_table
    metric = ContinualIoUMetric()
    metric.dataset_meta = dict(classes=('a', 'b'))
    label = torch.tensor([[[0, 1], [1, 1]]])
    metric.process({}, [
        dict(
            domain=d,
            pred_sem_seg=dict(data=label),
            gt_sem_seg=dict(data=label)) for d in ('fog', 'snow')
    ])
    lines = format_class_table(metric.summary()).splitlines()
    assert [c.strip()
            for c in lines[0].split('|')] == ['Class', 'fog', 'snow', 'All']
    assert [c.strip()
            for c in lines[2].split('|')] == ['a', '100.0', '100.0', '100.0']


def test_hook_applies_the_config_opt_in_for_mmseg_test_tool(monkeypatch):
    """mmseg's tools/test.py does not read ``unsafe_load``; the hook does."""
    from types import SimpleNamespace

    from mmengine.config import Config
    monkeypatch.setattr(safe_load, '_unsafe_load_source', None)
    hook = TestTimeAdaptationHook()
    hooks = [TTAResultsHook()]
    adaptation = dict(method=dict(type='Tent'))
    hook.before_run(
        SimpleNamespace(
            cfg=Config(dict(unsafe_load=False, adaptation=adaptation)),
            hooks=hooks))
    assert not safe_load.unsafe_load_allowed()
    hook.before_run(
        SimpleNamespace(
            cfg=Config(dict(unsafe_load=True, adaptation=adaptation)),
            hooks=hooks))
    assert safe_load.unsafe_load_allowed()


def test_hook_arguments_in_custom_hooks_point_to_the_adaptation_key():
    """The old form, ``dict(type=..., method=...)``, says what to write."""
    from mmseg.registry import HOOKS
    with pytest.raises(TypeError, match=r'adaptation = dict\(method='):
        HOOKS.build(
            dict(type='TestTimeAdaptationHook', method=dict(type='Tent')))


def test_unknown_adaptation_key_names_the_known_ones():
    cfg = load_config(TENT, {'adaptation.episodes': True})  # a typo
    with pytest.raises(KeyError, match="'episodic'"):
        AdaptationSettings.from_config(cfg, 'x.py')


def test_a_finished_domain_is_reported_before_the_episodic_reset():
    """The TTA hook tells every StreamSegmentHook first, whatever its
    priority, and resets after."""
    from mmseg.structures import SegDataSample

    from mmseg_ecotta.engine import StreamSegmentHook
    from mmseg_ecotta.engine.adaptation_state import StreamCheckpoint
    events = []

    class Recorder(StreamSegmentHook):
        priority = 'LOWEST'

        def segment_ended(self, runner, segment):
            events.append(('ended', segment))

    tta = TestTimeAdaptationHook()
    tta.settings = AdaptationSettings(
        method=dict(type='Source'), episodic=True)
    tta.checkpoint = StreamCheckpoint('state.pth', 0)
    tta.results = SimpleNamespace(collapsed=False)
    tta.method = SimpleNamespace(
        reset=lambda: events.append(('reset', )),
        segment_started=lambda: events.append(('started', )))
    runner = SimpleNamespace(
        hooks=[tta, Recorder()], test_evaluator=SimpleNamespace(metrics=[]))
    for domain in ('fog', 'fog', 'night'):
        sample = SegDataSample(metainfo=dict(round=0, domain=domain))
        tta.before_test_iter(runner, 0, dict(data_samples=[sample]))
    assert events == [('ended', (0, 'fog')), ('reset', ), ('started', )]
    assert tta.segments.current == (0, 'night')
