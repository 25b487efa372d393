"""Side-by-side comparison of several methods' ``tta_results.json``.

:func:`comparison_rows` turns each run's results into one row per method;
:func:`write_comparison_files` writes them as Markdown, CSV, JSON and the two
plots of :mod:`.plots` (what ``tools/compare.py`` and
``tools/run_main_job.py`` produce).
"""
import csv
import json
import os
import os.path as osp
from typing import Dict, List, Sequence

import numpy as np

from .results import format_score, write_json_atomic


def load_results(path: str) -> dict:
    """Read one run's results file (schema in :mod:`.results`)."""
    with open(path) as f:
        return json.load(f)


def _mean(values: Sequence) -> float:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else float('nan')


def comparison_rows(runs: Dict[str, dict]) -> List[dict]:
    """One row per method: mIoU per domain (mean over rounds) and cost.

    Args:
        runs (dict): Method label -> results dict.

    Returns:
        list[dict]: Rows with ``method``, each domain, ``mean``,
        ``first_round``, ``last_round``, ``rounds`` (round name ->
        domain -> mIoU, plus ``mean``), ``seconds_per_image``,
        ``trainable_params``, ``update_fraction`` (share of steps that
        updated the weights; None without parameters, or in results from
        before it was recorded), ``peak_memory_mib``,
        ``peak_memory_kind``.
    """
    rows = []
    for label, res in runs.items():
        row = dict(method=label)
        for domain in res['domains']:
            row[domain] = _mean(
                [s['mIoU'] for s in res['segments'] if s['domain'] == domain])
        row['mean'] = res['mean_mIoU']
        rounds = list(res['table'].values())
        row['first_round'] = rounds[0]['mean'] if rounds else None
        row['last_round'] = rounds[-1]['mean'] if rounds else None
        row['rounds'] = {name: dict(v) for name, v in res['table'].items()}
        cost = res['cost']
        row['seconds_per_image'] = cost['seconds_per_image']
        row['trainable_params'] = cost['trainable_params']
        row['update_fraction'] = res.get('adaptation',
                                         {}).get('update_fraction')
        row['peak_memory_mib'] = cost['peak_memory_bytes'] / 2**20
        row['peak_memory_kind'] = cost['peak_memory_kind']
        rows.append(row)
    return rows


def format_comparison(rows: List[dict], domains: Sequence[str]) -> str:
    """A Markdown table of :func:`comparison_rows`."""
    source = next((r for r in rows if r['method'].lower() == 'source'), None)
    header = (['Method'] + list(domains) + [
        'Mean', 'Round 1', 'Last round', 's/img', 'x Source', 'Trainable',
        'Updated', 'Saved for bwd (MiB)'
    ])
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    for r in rows:
        ratio = (f"{r['seconds_per_image'] / source['seconds_per_image']:.2f}"
                 if source else '-')  # no Source run to compare with
        cells = ([r['method']] + [f'{r[d]:.1f}' for d in domains] + [
            f"{r['mean']:.1f}", f"{r['first_round']:.1f}",
            f"{r['last_round']:.1f}", f"{r['seconds_per_image']:.3f}", ratio,
            f"{r['trainable_params']:,}",
            _percent(r.get('update_fraction')), f"{r['peak_memory_mib']:.1f}"
        ])
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def format_round_comparison(rows: List[dict], domains: Sequence[str]) -> str:
    """A Markdown table of mIoU per method, round and domain."""
    header = ['Method', 'Round'] + list(domains) + ['Mean']
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    for r in rows:
        for name, values in r['rounds'].items():
            cells = [r['method'], name.replace('round ', '')] + [
                format_score(values.get(d)) for d in list(domains) + ['mean']
            ]
            lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def _percent(fraction) -> str:
    """Share of images updated, e.g. ``'12%'``; ``'-'`` when none apply."""
    return '-' if fraction is None else f'{100 * fraction:.0f}%'


def write_comparison(rows: List[dict], path: str) -> None:
    """Write the rows as JSON (atomically)."""
    write_json_atomic(dict(rows=rows), path)


def write_comparison_csv(rows: List[dict], domains: Sequence[str],
                         path: str) -> None:
    """Write the rows as CSV, one line per method.

    Columns: ``method``, the mean mIoU of each domain over rounds,
    ``mean``, ``first_round``, ``last_round``, then ``round R/DOMAIN`` and
    ``round R/mean`` for every round, then the cost columns.
    """
    round_names = list(rows[0]['rounds']) if rows else []
    round_cols = [
        f'{name}/{d}' for name in round_names
        for d in list(domains) + ['mean']
    ]
    cost_cols = [
        'seconds_per_image', 'trainable_params', 'update_fraction',
        'peak_memory_mib', 'peak_memory_kind'
    ]
    header = (['method'] + list(domains) +
              ['mean', 'first_round', 'last_round'] + round_cols + cost_cols)
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for r in rows:
            per_round = {
                f'{name}/{d}': v
                for name, values in r['rounds'].items()
                for d, v in values.items()
            }
            writer.writerow([r['method']] + [
                r[c]
                for c in list(domains) + ['mean', 'first_round', 'last_round']
            ] + [per_round.get(c)
                 for c in round_cols] + [r[c] for c in cost_cols])


def write_comparison_files(runs: Dict[str, dict], out_dir: str) -> str:
    """Write a comparison of several runs in every format, with plots.

    Files in ``out_dir``: ``comparison.md`` (both Markdown tables),
    ``comparison.csv``, ``comparison.json``, ``comparison_miou.png``
    (mIoU per domain over the stream) and ``comparison_memory.png``
    (memory versus mIoU, EcoTTA Fig. 1(b)).

    Args:
        runs (dict): Method label -> results dict (``tta_results.json``),
            all over the same stream.
        out_dir (str): Output directory, created if missing.

    Returns:
        str: The Markdown text written to ``comparison.md``.
    """
    from .plots import plot_memory_vs_miou, plot_miou_over_stream
    if not runs:
        raise ValueError('runs is empty: give at least one results dict')
    domains = next(iter(runs.values()))['domains']
    rows = comparison_rows(runs)
    markdown = ('mIoU (%) per domain, mean over rounds; cost per image\n\n' +
                format_comparison(rows, domains) +
                '\n\nmIoU (%) per round\n\n' +
                format_round_comparison(rows, domains) + '\n')
    os.makedirs(out_dir, exist_ok=True)
    with open(osp.join(out_dir, 'comparison.md'), 'w') as f:
        f.write(markdown)
    write_comparison_csv(rows, domains, osp.join(out_dir, 'comparison.csv'))
    write_json_atomic(
        dict(domains=domains, rows=rows), osp.join(out_dir, 'comparison.json'))
    plot_miou_over_stream(runs, osp.join(out_dir, 'comparison_miou.png'))
    plot_memory_vs_miou(rows, osp.join(out_dir, 'comparison_memory.png'))
    return markdown
