"""The adaptation trace: what each update did, without changing the run."""
import json
import os.path as osp
import subprocess
import sys

from mmseg_ecotta.apis import tta_test_config
from mmseg_ecotta.engine.adaptation_trace_hook import param_group
from mmseg_ecotta.utils import load_config
from ..conftest import REPO
from .test_tta_hook import DOMAINS, MMSEG_TEST, TENT, run_tool


def test_param_group_cuts_the_name():
    name = 'backbone.meta_nets.0.conv_block.conv.weight'
    assert param_group(name, 3) == 'backbone.meta_nets.0'
    assert param_group(name, 1) == 'backbone'


def test_trace_records_every_update_and_leaves_results_alone(
        tmp_path, acdc_root, tiny_checkpoint):
    traced, plain = str(tmp_path / 'traced'), str(tmp_path / 'plain')
    # Traced by the setting, with mmseg's own tool (it has no --trace).
    for tool, work_dir, options in ((MMSEG_TEST, traced,
                                     ['adaptation.trace=True']),
                                    ('tools/test_tta.py', plain, [])):
        result = run_tool(tool, TENT, tiny_checkpoint, work_dir, acdc_root,
                          *options)
        assert result.returncode == 0, result.stderr[-3000:]
    results = []
    for work_dir in (traced, plain):
        with open(osp.join(work_dir, 'tta_results.json')) as f:
            results.append(json.load(f))
    # An observer only reads: the run is the same to the last digit.
    assert results[0]['table'] == results[1]['table']
    assert not osp.exists(osp.join(plain, 'adaptation_trace.json'))
    with open(osp.join(traced, 'adaptation_trace.json')) as f:
        trace = json.load(f)
    rows = trace['rows']
    assert trace['method'] == 'Tent'
    assert len(rows) == results[0]['adaptation']['updates'] == 16
    assert [(r['round'], r['domain']) for r in rows[::2]
            ] == [(rnd, d) for rnd in range(2) for d in DOMAINS]
    groups = set(rows[0]['grad'])
    assert 'backbone.layer1.0' in groups and set(rows[0]['drift']) == groups
    assert all(0.0 <= r['confident'] <= 1.0 for r in rows)
    # Tent's BN affine moves from the first update on, and keeps moving.
    assert 0 < rows[0]['drift']['backbone.layer1.0'] < rows[-1]['drift'][
        'backbone.layer1.0']
    summary = subprocess.run([
        sys.executable, 'tools/analysis/adaptation_trace.py', traced,
        '--against', plain
    ],
                             cwd=REPO,
                             capture_output=True,
                             text=True)
    assert summary.returncode == 0, summary.stderr[-3000:]
    lines = summary.stdout.splitlines()
    assert sum(line.startswith('| 2 | snow | 2 |') for line in lines) == 1
    assert '| mIoU |' in summary.stdout and '+0.00 |' in summary.stdout


def test_the_trace_flag_sets_the_adaptation_setting(tiny_checkpoint):
    cfg = load_config(TENT)
    assert not tta_test_config(cfg, tiny_checkpoint).adaptation.get('trace')
    cfg = load_config(TENT)
    assert tta_test_config(cfg, tiny_checkpoint, trace=True).adaptation.trace


def test_trace_summary_names_a_missing_trace(tmp_path):
    result = subprocess.run(
        [sys.executable, 'tools/analysis/adaptation_trace.py',
         str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True)
    assert result.returncode != 0
    assert 'adaptation_trace.json does not exist: run tools/test_tta.py ' \
        'with --trace' in result.stderr
