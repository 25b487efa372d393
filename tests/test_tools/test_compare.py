"""tools/compare.py end to end on the ACDC fixture, and its errors."""
import json
import os.path as osp
import subprocess
import sys

import pytest

from mmseg_ecotta.apis import MethodRun, run_methods
from ..conftest import REPO, synthetic_config
from ..test_engine.test_tta_hook import TENT

SOURCE = synthetic_config('source')


def test_compare_two_methods(tmp_path, acdc_root, tiny_checkpoint):
    work_dir = str(tmp_path / 'cmp')
    cmd = [
        sys.executable, 'tools/compare.py', SOURCE, TENT, '--checkpoint',
        tiny_checkpoint, '--work-dir', work_dir, '--rounds', '1',
        '--cfg-options', 'test_dataloader.dataset.dataset_template.'
        f'data_root={acdc_root}', 'test_dataloader.num_workers=0'
    ]
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert '| Source |' in result.stdout and '| Tent |' in result.stdout
    for name in ('comparison.md', 'comparison.csv', 'comparison.json',
                 'comparison_miou.png', 'comparison_memory.png'):
        assert osp.getsize(osp.join(work_dir, name)) > 0, name
    with open(osp.join(work_dir, 'comparison.json')) as f:
        rows = json.load(f)['rows']
    assert [r['method'] for r in rows] == ['Source', 'Tent']
    assert list(rows[1]['rounds']) == ['round 1']
    assert rows[0]['trainable_params'] == 0 < rows[1]['trainable_params']
    run_dir = osp.join(work_dir, osp.basename(TENT)[:-3])
    assert osp.isfile(osp.join(run_dir, 'tta_results.json'))


def test_checkpoint_count_must_match_configs(tmp_path):
    cmd = [
        sys.executable, 'tools/compare.py', SOURCE, TENT, TENT, '--checkpoint',
        'a.pth', 'b.pth', '--work-dir',
        str(tmp_path)
    ]
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert '2 checkpoints for 3 configs' in result.stderr


def test_run_methods_names_bad_paths_and_repeated_names(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint 'nope.pth'"):
        run_methods([MethodRun('a', TENT, 'nope.pth')], str(tmp_path))
    with pytest.raises(ValueError, match=r"\['a'\] repeat"):
        run_methods([MethodRun('a', TENT, 'x'),
                     MethodRun('a', SOURCE, 'x')], str(tmp_path))
