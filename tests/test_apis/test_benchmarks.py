"""The benchmarks' rows: what the README's tables run."""
import os.path as osp

import pytest

from mmseg_ecotta.apis import benchmarks

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
ROWS = dict(
    main_job=benchmarks.MAIN_JOB_RUNS,
    dev=benchmarks.DEV_RUNS + [benchmarks.DEV_COTTA],
    dev_ablation=benchmarks.DEV_ABLATION,
    synthetic_ablation=benchmarks.SYNTHETIC_ABLATION)


@pytest.mark.parametrize('name', sorted(ROWS))
def test_every_row_runs_a_shipped_config_and_checkpoint(name):
    rows = ROWS[name]
    labels = [label for label, _, _, _ in rows]
    assert len(set(labels)) == len(labels), labels
    for label, config, checkpoint, _ in rows:
        assert osp.isfile(osp.join(REPO, config)), (label, config)
        assert osp.isfile(osp.join(REPO, checkpoint)), (label, checkpoint)


@pytest.mark.parametrize('ablation, reported', [
    (benchmarks.DEV_ABLATION, benchmarks.DEV_RUNS),
    (benchmarks.SYNTHETIC_ABLATION, benchmarks.MAIN_JOB_RUNS),
])
def test_the_ablations_ours_is_the_reported_ecotta(ablation, reported):
    # 'ours' in an ablation is what the shipped config and checkpoint run,
    # with no option on top, and what the reported table runs as EcoTTA.
    ours = [row for row in ablation if row[0].startswith('ours:')]
    ecotta = [row for row in reported if row[0] == 'EcoTTA']
    assert len(ours) == 1 and len(ecotta) == 1
    assert ours[0][1:] == ecotta[0][1:] and ours[0][3] == ()
