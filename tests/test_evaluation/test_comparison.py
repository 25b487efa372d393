"""Comparison tables, CSV, JSON and plots from fake results files."""
import csv
import json
import os.path as osp

import cv2
import pytest

from mmseg_ecotta.evaluation.comparison import (comparison_rows,
                                                format_comparison,
                                                load_results,
                                                write_comparison_files)
from mmseg_ecotta.evaluation.plots import (plot_memory_vs_miou,
                                           plot_miou_over_stream)

DOMAINS = ['fog', 'night']


def fake_results(method: str,
                 mious: list,
                 seconds: float,
                 params: int,
                 mib: float,
                 updated=None) -> dict:
    """A ``tta_results.json`` of 2 rounds x 2 domains, mIoUs in order."""
    segments = [
        dict(round=r, domain=d, num_images=2, mIoU=mious[2 * r + i])
        for r in range(2) for i, d in enumerate(DOMAINS)
    ]
    table = {
        f'round {r + 1}':
        dict(
            fog=mious[2 * r],
            night=mious[2 * r + 1],
            mean=(mious[2 * r] + mious[2 * r + 1]) / 2)
        for r in range(2)
    }
    return dict(
        method=method,
        domains=DOMAINS,
        rounds=2,
        segments=segments,
        table=table,
        mean_mIoU=sum(mious) / 4,
        cost=dict(
            seconds_per_image=seconds,
            trainable_params=params,
            peak_memory_bytes=int(mib * 2**20),
            peak_memory_kind='cpu_activations_saved_for_backward'),
        adaptation=dict(update_fraction=updated))


@pytest.fixture
def runs(tmp_path) -> dict:
    """Two methods' results, written to and read back from JSON files."""
    out = {}
    for name, args in dict(
            Source=([40., 20., 40., 20.], 0.1, 0, 0.),
            Tent=([42., 24., 44., 26.], 0.3, 1000, 12.5, 0.25)).items():
        path = tmp_path / f'{name}.json'
        path.write_text(json.dumps(fake_results(name, *args)))
        out[name] = load_results(str(path))
    return out


def test_rows_hold_domain_round_and_cost_columns(runs):
    rows = comparison_rows(runs)
    tent = rows[1]
    assert tent['method'] == 'Tent'
    assert tent['fog'] == 43.0 and tent['night'] == 25.0
    assert tent['mean'] == 34.0
    assert tent['first_round'] == 33.0 and tent['last_round'] == 35.0
    assert tent['rounds']['round 2'] == dict(fog=44.0, night=26.0, mean=35.0)
    assert tent['peak_memory_mib'] == 12.5
    assert tent['trainable_params'] == 1000
    assert tent['update_fraction'] == 0.25
    assert rows[0]['update_fraction'] is None


def test_markdown_csv_json_and_plots_are_written(runs, tmp_path):
    out = str(tmp_path / 'cmp')
    markdown = write_comparison_files(runs, out)
    with open(osp.join(out, 'comparison.md')) as f:
        assert f.read() == markdown
    lines = markdown.splitlines()
    header = next(line for line in lines if line.startswith('| Method |'))
    assert [c.strip() for c in header.strip('|').split('|')
            ][:4] == ['Method', 'fog', 'night', 'Mean']
    assert '| Tent | 43.0 | 25.0 | 34.0 | 33.0 | 35.0 | 0.300 | 3.00 | ' \
        '1,000 | 25% | 12.5 |' in lines
    assert '| Source | 40.0 | 20.0 | 30.0 | 30.0 | 30.0 | 0.100 | 1.00 | ' \
        '0 | - | 0.0 |' in lines
    assert '| Tent | 2 | 44.0 | 26.0 | 35.0 |' in lines  # per round
    with open(osp.join(out, 'comparison.csv')) as f:
        table = list(csv.DictReader(f))
    assert [r['method'] for r in table] == ['Source', 'Tent']
    assert float(table[1]['round 1/night']) == 24.0
    assert float(table[1]['round 2/mean']) == 35.0
    assert float(table[1]['seconds_per_image']) == 0.3
    with open(osp.join(out, 'comparison.json')) as f:
        data = json.load(f)
    assert data['domains'] == DOMAINS
    assert data['rows'][0]['method'] == 'Source'
    for name in ('comparison_miou.png', 'comparison_memory.png'):
        image = cv2.imread(osp.join(out, name))
        assert image is not None and image.std() > 0, name


def test_plots_draw_gaps_for_missing_miou(runs, tmp_path):
    runs['Tent']['segments'][1]['mIoU'] = None  # no valid class there
    plot_miou_over_stream(runs, str(tmp_path / 'a' / 'miou.png'))
    plot_memory_vs_miou(comparison_rows(runs), str(tmp_path / 'mem.png'))
    assert osp.getsize(tmp_path / 'a' / 'miou.png') > 1000
    assert osp.getsize(tmp_path / 'mem.png') > 1000


def test_empty_comparison_is_refused(tmp_path):
    with pytest.raises(ValueError, match='at least one'):
        write_comparison_files({}, str(tmp_path))


def test_time_ratio_needs_a_source_row(runs):
    with_source = format_comparison(comparison_rows(runs), DOMAINS)
    assert '| 3.00 |' in with_source.splitlines()[3]  # Tent: 0.3 s / 0.1 s
    alone = format_comparison(
        comparison_rows(dict(Tent=runs['Tent'])), DOMAINS).splitlines()[2]
    assert '| 0.300 | - |' in alone and 'nan' not in alone
