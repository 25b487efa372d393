"""The memory report as text: a Markdown table, log lines and JSON.

The measurements are :mod:`mmseg_ecotta.analysis.memory`'s.
"""
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Dict, Optional, Sequence

if TYPE_CHECKING:
    from .memory import MemoryRow

MIB = 2.0**20


def row_summary(row: 'MemoryRow') -> str:
    """One log line: saved and analytic MiB, seconds per step."""
    saved = '-' if row.saved_activation_bytes is None else (
        f'{row.saved_activation_bytes / MIB:.1f}')
    return (f'saved {saved} MiB, analytic '
            f'{row.analytic_total_bytes / MIB:.1f} MiB, '
            f'{row.seconds_per_step:.2f} s/step')


def _mib(value: Optional[int]) -> str:
    if value is None:
        return '-'
    # Two decimals below 10 MiB, so TENT's BN parameters are not 0.0.
    return f'{value / MIB:.2f}' if value < 10 * MIB else f'{value / MIB:.1f}'


TABLE_COLUMNS = (
    ('variant', 'variant'),
    ('trainable', 'trainable_param_bytes'),
    ('frozen', 'frozen_param_bytes'),
    ('optim. state', 'optimizer_state_bytes'),
    ('extra copies', 'extra_copy_bytes'),
    ('saved for backward', 'saved_activation_bytes'),
    ('analytic act.', 'analytic_activation_bytes'),
    ('analytic total', 'analytic_total_bytes'),
    ('CUDA step peak', 'cuda_step_peak_bytes'),
    ('CUDA inference peak', 'cuda_inference_peak_bytes'),
    ('s/step', 'seconds_per_step'),
)


def format_markdown(rows: Sequence['MemoryRow']) -> str:
    """A Markdown table of ``rows``, sizes in MiB.

    Args:
        rows (Sequence['MemoryRow']): Measured rows.

    Returns:
        str: The table, header included.
    """
    header = [title for title, _ in TABLE_COLUMNS]
    lines = [
        '| ' + ' | '.join(header) + ' |',
        '|' + '|'.join(['---'] + ['--:'] * (len(header) - 1)) + '|'
    ]
    for row in rows:
        cells = []
        for _, attr in TABLE_COLUMNS:
            value = getattr(row, attr)
            if attr == 'variant':
                cells.append(value)
            elif attr == 'seconds_per_step':
                mark = '' if row.timed_steps else ' (warm-up)'
                steps = row.timed_steps + 1
                if row.saved_activation_bytes is not None and (row.updates
                                                               < steps):
                    # A skipped update (non-finite loss, or EATA's filter
                    # left no pixel) ran no backward: a shorter step.
                    mark += f' ({row.updates}/{steps} updates)'
                cells.append(f'{value:.2f}{mark}')
            else:
                cells.append(_mib(value))
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def rows_to_json(rows: Sequence['MemoryRow'], **meta: Any) -> Dict[str, Any]:
    """A JSON-ready dict of ``rows`` and ``meta``."""
    return dict(meta, rows=[asdict(row) for row in rows])
