"""The soak benchmark: memory sampling and the growth verdict."""
import json
import os.path as osp
import subprocess
import sys

import pytest

from mmseg_ecotta.analysis import memory_trend, resident_bytes
from ..conftest import REPO, synthetic_config, write_acdc

MIB = 2**20
ECOTTA = synthetic_config('ecotta')
WARMUP = osp.join(
    REPO, 'data/checkpoints/'
    'deeplabv3plus_r18-tiny_meta_synthetic-warmup.pth')


def test_resident_bytes_sees_an_allocation():
    before = resident_bytes()
    block = bytearray(64 * MIB)
    block[::4096] = b'\x01' * len(block[::4096])  # touch every page
    assert resident_bytes() - before > 48 * MIB


def test_a_leak_fails_and_noise_passes():
    steps = list(range(20, 2001, 20))
    noise = [
        500 * MIB + (7 * MIB if i % 3 else -5 * MIB)
        for i in range(len(steps))
    ]
    assert not memory_trend(steps, noise, 2000)['grows']
    leak = [v + s * 16 * 1024 for v, s in zip(noise, steps)]  # 16 KiB/step
    verdict = memory_trend(steps, leak, 2000)
    assert verdict['grows']
    assert verdict['slope_bytes_per_step'] == pytest.approx(16 * 1024, rel=0.1)
    with pytest.raises(ValueError, match='at least 4 memory samples'):
        memory_trend(steps[:3], noise[:3], 2000)


def test_short_soak_drives_the_real_runner(tmp_path):
    root = write_acdc(
        str(tmp_path / 'acdc'),
        {c: 3
         for c in ('fog', 'night', 'rain', 'snow')})
    out, work_dir = str(tmp_path / 'soak.json'), str(tmp_path / 'work')
    result = subprocess.run([
        sys.executable, 'tools/analysis/soak.py', ECOTTA, WARMUP, '--steps',
        '40', '--interval', '4', '--json', out, '--work-dir', work_dir,
        '--cfg-options',
        f'test_dataloader.dataset.dataset_template.data_root={root}',
        'adaptation.checkpoint_interval=10'
    ],
                            cwd=REPO,
                            capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert '48 steps of' in result.stdout  # 4 whole rounds of 12 images
    assert 'rss_trend' in result.stdout and 'flat' in result.stdout
    with open(out) as f:
        soak = json.load(f)
    assert [s['step'] for s in soak['samples']] == list(range(4, 49, 4))
    # The runner's own writes happened: results, adaptation state, log.
    with open(osp.join(work_dir, 'tta_results.json')) as f:
        results = json.load(f)
    assert results['complete'] and results['rounds'] == 4
    assert osp.isfile(osp.join(work_dir, 'tta_state.pth'))
