"""Plots of a method comparison: mIoU over the stream, memory vs. mIoU.

Drawn with matplotlib's object-oriented API on an Agg canvas: no GUI, no
``pyplot`` state and no global backend switch, so importing this module in a
process that uses another backend changes nothing there.
"""
import math
import os
import os.path as osp
from typing import Dict, List, Optional

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

MEMORY_AXIS_LABELS = {
    'cuda_peak_allocated':
    'peak GPU memory allocated (MiB)',
    'cpu_activations_saved_for_backward':
    'activations saved for backward, one step (MiB)',
}


def _save(fig: Figure, path: str) -> None:
    """Render ``fig`` to a PNG file, creating its directory."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=120, bbox_inches='tight')


def _value(v: Optional[float]) -> float:
    """A missing mIoU (null in JSON) is drawn as a gap."""
    return float('nan') if v is None else float(v)


def plot_miou_over_stream(runs: Dict[str, dict], path: str) -> None:
    """mIoU of every (round, domain) segment in stream order, per method.

    One line per method; the x axis is the stream (labelled with the
    domain names), with dashed vertical lines at round boundaries and the
    round number above each round.

    Args:
        runs (dict): Method label -> results dict (``tta_results.json``),
            all over the same stream.
        path (str): The PNG file to write.
    """
    if not runs:
        raise ValueError('runs is empty: give at least one results dict')
    segments = next(iter(runs.values()))['segments']
    order = [(s['round'], s['domain']) for s in segments]
    fig = Figure(figsize=(max(6.0, 0.45 * len(order) + 2), 4.0))
    ax = fig.add_subplot()
    x = list(range(len(order)))
    for label, res in runs.items():
        by_segment = {
            (s['round'], s['domain']): s['mIoU']
            for s in res['segments']
        }
        ax.plot(
            x, [_value(by_segment.get(key)) for key in order],
            marker='o',
            markersize=3,
            label=label)
    starts = [
        i for i, key in enumerate(order) if i == 0 or key[0] != order[i - 1][0]
    ]
    for start in starts:
        if start > 0:
            ax.axvline(start - 0.5, color='grey', linestyle='--', lw=0.8)
        ax.text(
            start - 0.4,
            1.0,
            f'round {order[start][0] + 1}',
            transform=ax.get_xaxis_transform(),
            va='bottom',
            fontsize=8)
    ax.set_xticks(x)
    ax.set_xticklabels([domain for _, domain in order],
                       rotation=90,
                       fontsize=8)
    ax.set_xlim(-0.5, len(order) - 0.5)
    ax.set_ylabel('mIoU (%)')
    ax.grid(axis='y', alpha=0.3)
    ax.legend(fontsize=8, loc='best')
    _save(fig, path)


def plot_memory_vs_miou(rows: List[dict], path: str) -> None:
    """Peak memory against mean mIoU, one labelled point per method.

    The layout of EcoTTA's Fig. 1(b): the better trade-offs lie top left.

    Args:
        rows (list[dict]): Rows of
            :func:`~mmseg_ecotta.evaluation.comparison.comparison_rows`.
        path (str): The PNG file to write.
    """
    if not rows:
        raise ValueError('rows is empty: give at least one comparison row')
    fig = Figure(figsize=(5.0, 4.0))
    ax = fig.add_subplot()
    for r in rows:
        mean = _value(r['mean'])
        ax.scatter([r['peak_memory_mib']], [mean], s=40)
        if not math.isnan(mean):
            ax.annotate(
                r['method'], (r['peak_memory_mib'], mean),
                textcoords='offset points',
                xytext=(5, 5),
                fontsize=9)
    kind = rows[0]['peak_memory_kind']
    ax.set_xlabel(MEMORY_AXIS_LABELS.get(kind, f'{kind} (MiB)'))
    ax.set_ylabel('mean mIoU (%)')
    ax.margins(x=0.2, y=0.2)
    ax.set_xlim(left=0)  # memory is never negative; keep the origin
    ax.grid(alpha=0.3)
    _save(fig, path)
