"""The tools refuse a planted checkpoint, and load it after --unsafe-load.

The scenario of issue 14: a checkpoint whose ``meta`` runs a shell command
when unpickled, passed to the tools with a synthetic-stream config.
"""
import os.path as osp
import subprocess
import sys

import torch

from ..conftest import (REPO, SHELL_GLOBAL, TINY_MODEL, ShellPayload,
                        build_model, synthetic_config)

SOURCE = synthetic_config('source')


def _planted_checkpoint(tmp_path) -> tuple:
    """Right weights for the tiny model, and a payload in ``meta``."""
    marker, path = str(tmp_path / 'pwned'), str(tmp_path / 'planted.pth')
    torch.save(
        dict(
            meta=dict(note=ShellPayload(marker)),
            state_dict=build_model(TINY_MODEL).state_dict()), path)
    return marker, path


def test_test_tta_refuses_planted_checkpoint(tmp_path, acdc_root):
    marker, path = _planted_checkpoint(tmp_path)
    cmd = [
        sys.executable, 'tools/test_tta.py', SOURCE, path, '--work-dir',
        str(tmp_path / 'work'), '--cfg-options',
        f'test_dataloader.dataset.dataset_template.data_root={acdc_root}',
        'test_dataloader.num_workers=0'
    ]
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert result.returncode != 0
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith('mmseg_ecotta.safe_load.UnsafeFileError')
    assert repr(path) in error and SHELL_GLOBAL in error
    assert '--unsafe-load' in error
    assert not osp.exists(marker)


def test_compare_passes_unsafe_load_to_each_run(tmp_path, acdc_root):
    marker, path = _planted_checkpoint(tmp_path)
    work_dir = str(tmp_path / 'cmp')
    cmd = [
        sys.executable, 'tools/compare.py', SOURCE, '--checkpoint', path,
        '--work-dir', work_dir, '--rounds', '1', '--unsafe-load',
        '--cfg-options', 'test_dataloader.dataset.dataset_template.'
        f'data_root={acdc_root}', 'test_dataloader.num_workers=0'
    ]
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert osp.exists(marker)  # trusted on request: the payload ran
    with open(osp.join(work_dir, osp.basename(SOURCE)[:-3], 'run.log')) as f:
        log = f.read()
    assert f'loading checkpoint {path} with full unpickling' in log
