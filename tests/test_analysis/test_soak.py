"""The soak benchmark: memory sampling and the growth verdict."""
import os.path as osp
import subprocess
import sys

import pytest

from mmseg_ecotta.analysis import memory_trend, resident_bytes
from ..conftest import REPO

MIB = 2**20
ECOTTA = osp.join(
    REPO, 'configs/tta/synthetic/'
    'ecotta_deeplabv3plus_r18-tiny_meta_synthetic-stream.py')
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


@pytest.mark.skipif(
    not osp.isdir(osp.join(REPO, 'data/synthetic/acdc')),
    reason='python tools/make_synthetic_stream.py --out data/synthetic')
def test_short_soak_of_ecotta_is_flat(tmp_path):
    out = str(tmp_path / 'soak.json')
    result = subprocess.run([
        sys.executable, 'tools/analysis/soak.py', ECOTTA, WARMUP, '--steps',
        '100', '--interval', '10', '--json', out
    ],
                            cwd=REPO,
                            capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert 'RSS at step 100' in result.stdout
    assert 'rss_trend' in result.stdout and 'flat' in result.stdout
    assert osp.getsize(out) > 0
