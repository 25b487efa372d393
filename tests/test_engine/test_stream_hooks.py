"""Progress bar, stream overlays and adapted-model export."""
import io
import os
import os.path as osp
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from mmengine.logging import MMLogger
from mmengine.runner import load_checkpoint
from mmseg.structures import SegDataSample

from mmseg_ecotta.engine import (AdaptedModelExportHook, StreamProgressHook,
                                 TestTimeAdaptationHook, format_progress)
from mmseg_ecotta.evaluation import ContinualIoUMetric
from ..conftest import TINY_META_MODEL, TINY_MODEL, build_model
from ..test_tta.test_methods import build_method, make_batch
from .test_tta_hook import DOMAINS, TENT, run_tool


class FakeTerminal(io.StringIO):

    def isatty(self) -> bool:
        return True


def drive_progress(stream) -> str:
    """Run the progress hook over 2 domains x 2 images with a metric."""
    metric = ContinualIoUMetric()
    runner = SimpleNamespace(
        test_evaluator=SimpleNamespace(metrics=[metric]),
        test_dataloader=[None] * 4)
    hook = StreamProgressHook(width=10, stream=stream)
    hook.before_test(runner)
    perfect = np.array([[5., 5.], [5., 5.], [5., 5.], [5., 5.]])
    half = np.array([[5., 0.], [5., 5.], [5., 5.], [5., 5.]])
    for i, (domain, areas) in enumerate([('fog', perfect), ('fog', half),
                                         ('night', half), ('night', half)]):
        batch = dict(data_samples=[
            SegDataSample(metainfo=dict(round=0, domain=domain))
        ])
        hook.before_test_iter(runner, i, batch)
        # The evaluator's process, one entry per image (as distributed).
        metric.results.append((0, domain, areas, 1))
        hook.after_test_iter(runner, i, batch)
    hook.after_test_epoch(runner)
    return stream.getvalue()


def test_progress_bar_shows_eta_and_running_domain_miou():
    lines = drive_progress(FakeTerminal()).split('\n')
    assert len(lines) == 3 and lines[-1] == ''  # one line per domain
    fog, night = lines[0].split('\r')[1:], lines[1].split('\r')[1:]
    assert fog[0].endswith('round 1 fog mIoU 100.0')
    assert fog[1].endswith('round 1 fog mIoU 75.0')  # (100 + 50) / 2
    assert night[1].startswith('[##########] 4/4 100%')
    assert night[1].endswith('round 1 night mIoU 50.0')  # fog not mixed in
    assert 'ETA' in night[1]


def test_progress_bar_is_quiet_without_a_terminal():
    assert drive_progress(io.StringIO()) == ''


def test_format_progress_eta():
    line = format_progress(1, 4, 90.0, 'round 1 fog', 12.34, width=4)
    assert line == ('[#---] 1/4  25% 1:30 ETA 4:30 | round 1 fog mIoU 12.3')
    assert 'ETA -:--' in format_progress(0, 4, 0.0)


def test_overlays_and_exports_of_a_run(tmp_path, acdc_root, tiny_checkpoint):
    work_dir, show_dir = str(tmp_path / 'work'), str(tmp_path / 'vis')
    result = run_tool('tools/test_tta.py', TENT, tiny_checkpoint, work_dir,
                      acdc_root, '--show-dir', show_dir, '--show-frames', '1',
                      '--show-interval', '1', '--export-adapted',
                      'every-domain')
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'ETA' not in result.stdout  # captured stdout is no terminal
    # overlays: round and domain in the name, frames_per_domain=1 each
    names = sorted(os.listdir(show_dir))
    expected = sorted(f'round{r}_{d}_GOPR0000_frame_000000_rgb_anon.png'
                      for r in (1, 2) for d in DOMAINS)
    assert names == expected
    overlay = cv2.imread(osp.join(show_dir, names[0]))
    assert overlay.shape == (64, 3 * 128, 3)  # image | gt | prediction
    # exports: every domain boundary and the final weights, stock keys
    exported = sorted(
        f for f in os.listdir(work_dir)
        if f.startswith('adapted') and f.endswith('.pth'))
    assert len(exported) == 9 and 'adapted_final.pth' in exported
    final = torch.load(
        osp.join(work_dir, 'adapted_final.pth'), weights_only=True)
    last = torch.load(
        osp.join(work_dir, 'adapted_round2_snow.pth'), weights_only=True)
    assert final['meta']['adapted']['method'] == 'Tent'
    assert final['meta']['dataset_meta']['classes'][0] == 'road'
    fresh = build_model(TINY_MODEL)
    load_checkpoint(
        fresh, osp.join(work_dir, 'adapted_final.pth'), strict=True)
    source = torch.load(tiny_checkpoint, weights_only=True)['state_dict']
    changed = [
        k for k, v in final['state_dict'].items()
        if not torch.equal(v, source[k])
    ]
    affine = {
        f'{name}.{p}'
        for name, m in fresh.named_modules()
        if isinstance(m, torch.nn.BatchNorm2d) for p in ('weight', 'bias')
    }
    assert changed and set(changed) <= affine  # Tent's BN affine, adapted
    for key, value in final['state_dict'].items():
        assert torch.equal(value, last['state_dict'][key]), key


def export_final(name: str, work_dir: str) -> object:
    """Adapt ``name`` on one batch and export it as ``adapted_final.pth``.

    Returns:
        TTAMethod: The adapted method.
    """
    method = build_method(name)
    with torch.no_grad():  # as mmengine's TestLoop calls it
        method.test_step(make_batch(0))
    tta = TestTimeAdaptationHook()
    tta.method = method
    tta.segments.current = (0, 'fog')
    runner = SimpleNamespace(
        hooks=[tta],
        model=method.model,
        work_dir=work_dir,
        cfg=SimpleNamespace(filename='x.py'),
        _load_from='source.pth',
        logger=MMLogger.get_current_instance(),
        test_dataloader=SimpleNamespace(
            dataset=SimpleNamespace(metainfo=dict(classes=('a', 'b')))))
    hook = AdaptedModelExportHook()
    hook.after_test_epoch(runner)
    return method


@pytest.mark.parametrize('name', ['Tent', 'EcoTTA', 'CoTTA'])
def test_exported_checkpoint_round_trips_the_adapted_weights(name, tmp_path):
    method = export_final(name, str(tmp_path))
    fresh = build_model(TINY_META_MODEL if name == 'EcoTTA' else TINY_MODEL)
    load_checkpoint(fresh, str(tmp_path / 'adapted_final.pth'), strict=True)
    # CoTTA predicts with its mean teacher: that is what is deployed
    deployed = method.teacher if name == 'CoTTA' else method.model
    for key, value in deployed.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key


def test_export_replaces_a_planted_symlink(tmp_path):
    victim = tmp_path / 'victim.pth'
    victim.write_bytes(b'precious')
    work_dir = tmp_path / 'work'
    work_dir.mkdir()
    (work_dir / 'adapted_final.pth').symlink_to(victim)
    export_final('Tent', str(work_dir))
    assert victim.read_bytes() == b'precious'
    assert not (work_dir / 'adapted_final.pth').is_symlink()
    torch.load(str(work_dir / 'adapted_final.pth'), weights_only=True)
