"""Side-by-side comparison of several methods' ``tta_results.json``."""
import json
from typing import Dict, List, Sequence

import numpy as np

from .results import write_json_atomic


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
        ``first_round``, ``last_round``, ``seconds_per_image``,
        ``trainable_params``, ``peak_memory_mib``, ``peak_memory_kind``.
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
        cost = res['cost']
        row['seconds_per_image'] = cost['seconds_per_image']
        row['trainable_params'] = cost['trainable_params']
        row['peak_memory_mib'] = cost['peak_memory_bytes'] / 2**20
        row['peak_memory_kind'] = cost['peak_memory_kind']
        rows.append(row)
    return rows


def format_comparison(rows: List[dict], domains: Sequence[str]) -> str:
    """A Markdown table of :func:`comparison_rows`."""
    source = next((r for r in rows if r['method'].lower() == 'source'), None)
    header = (['Method'] + list(domains) + [
        'Mean', 'Round 1', 'Last round', 's/img', 'x Source', 'Trainable',
        'Saved for bwd (MiB)'
    ])
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    for r in rows:
        ratio = (
            r['seconds_per_image'] /
            source['seconds_per_image'] if source else float('nan'))
        cells = ([r['method']] + [f'{r[d]:.1f}' for d in domains] + [
            f"{r['mean']:.1f}", f"{r['first_round']:.1f}",
            f"{r['last_round']:.1f}", f"{r['seconds_per_image']:.3f}",
            f'{ratio:.2f}', f"{r['trainable_params']:,}",
            f"{r['peak_memory_mib']:.1f}"
        ])
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def write_comparison(rows: List[dict], path: str) -> None:
    """Write the rows as JSON (atomically)."""
    write_json_atomic(dict(rows=rows), path)
