"""Continual results: summary schema, round table, JSON file.

Schema of the summary (and of ``tta_results.json``; all IoUs in %)::

    {
      "domains": ["fog", ...],          # in stream order
      "rounds": 3,                      # rounds with at least one image
      "segments": [                     # one per (round, domain), in order
        {"round": 0, "domain": "fog", "num_images": 40, "mIoU": 41.2,
         "aAcc": 80.1, "per_class_iou": {"road": 90.3, ...},
         "dominant_class": "road",      # most predicted class
         "dominant_fraction": 0.41,     # its share of predicted pixels
         "collapsed": false}, ...],     # dominant_fraction >= threshold
      "table": {"round 1": {"fog": 41.2, ..., "mean": 38.0}, ...},
      "mean_mIoU": 37.5,                # over all segments
      "per_class_iou": {"road": 88.0, ...}  # over all segments
    }

The hook adds ``method``, ``config``, ``checkpoint``, ``removed_samples``
(samples removed from the stream at a resume, ``[{"domain", "sample"}]``),
``cost``
(``seconds_per_image``, ``trainable_params``, ``peak_memory_bytes``,
``peak_memory_kind``) and ``adaptation`` (update counters: ``steps``,
``updates``, ``skipped_*``, ``resets``, ``images`` and ``update_fraction``,
the share of steps that updated the weights, None without parameters).

The file is strict JSON: NaN (a class absent from a segment) is written as
``null``, an infinite number (a setting or counter that overflowed) as the
string ``"inf"`` or ``"-inf"``, so a run never fails on writing its results.
"""
import json
from typing import Dict, List, Sequence

import numpy as np

from ..utils import atomic_write


def _iou(areas: np.ndarray) -> np.ndarray:
    """Per-class IoU in % from summed (intersect, union, pred, label)."""
    intersect, union = areas[0], areas[1]
    with np.errstate(divide='ignore', invalid='ignore'):
        return np.where(union > 0, intersect / union, np.nan) * 100


def _nanmean(values) -> float:
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0 or np.isnan(values).all():
        return float('nan')
    return float(np.nanmean(values))


# A segment whose predictions are this much one class has collapsed (the
# synthetic and Cityscapes-like scenes have no class above about 40%).
COLLAPSE_FRACTION = 0.9


def summarize_stream(segments: Dict,
                     class_names: Sequence[str],
                     collapse_fraction: float = COLLAPSE_FRACTION) -> dict:
    """Summarise per-(round, domain) areas into the documented schema.

    Args:
        segments (dict): ``(round, domain) -> [areas (4, C), num_images]``
            in stream order, areas being intersection, union, prediction
            and label pixel counts per class.
        class_names (Sequence[str]): Class names, length C.
        collapse_fraction (float): Share of predicted pixels in one class
            from which a segment counts as collapsed.

    Returns:
        dict: The summary (see the module docstring).
    """
    out, domains, table = [], [], {}
    total = np.zeros((4, len(class_names)))
    for (round_idx, domain), (areas, count) in segments.items():
        iou = _iou(areas)
        total += areas
        if domain not in domains:
            domains.append(domain)
        predicted = areas[2]
        dominant = int(np.argmax(predicted))
        share = float(predicted[dominant] / max(predicted.sum(), 1))
        out.append(
            dict(
                round=round_idx,
                domain=domain,
                num_images=int(count),
                mIoU=_nanmean(iou),
                aAcc=float(areas[0].sum() / max(areas[3].sum(), 1) * 100),
                per_class_iou={
                    c: (None if np.isnan(v) else float(v))
                    for c, v in zip(class_names, iou)
                },
                dominant_class=class_names[dominant],
                dominant_fraction=share,
                collapsed=share >= collapse_fraction))
        row = table.setdefault(f'round {round_idx + 1}', {})
        row[domain] = out[-1]['mIoU']
    for row in table.values():
        row['mean'] = _nanmean([v for k, v in row.items() if k != 'mean'])
    per_class = np.array(
        [[np.nan if v is None else v for v in seg['per_class_iou'].values()]
         for seg in out]) if out else np.zeros((0, len(class_names)))
    return dict(
        domains=domains,
        rounds=len(table),
        collapsed_segments=sum(seg['collapsed'] for seg in out),
        segments=out,
        table=table,
        mean_mIoU=_nanmean([seg['mIoU'] for seg in out]),
        per_class_iou={
            c: _nanmean(per_class[:, i]) if len(out) else None
            for i, c in enumerate(class_names)
        })


def format_round_table(summary: dict, title: str = '') -> str:
    """CoTTA Table-5 layout: rows are rounds, columns domains and mean."""
    domains = summary['domains']
    header = ['Round'] + domains + ['Mean']
    rows = [[name] + [format_score(values.get(d))
                      for d in domains] + [format_score(values['mean'])]
            for name, values in summary['table'].items()]
    rows.append(['All'] + [
        format_score(
            _nanmean(
                [s['mIoU'] for s in summary['segments'] if s['domain'] == d]))
        for d in domains
    ] + [format_score(summary['mean_mIoU'])])
    return _layout(header, rows, title)


def format_class_table(summary: dict, title: str = '') -> str:
    """Per-class IoU: rows are classes, columns domains (mean over rounds)."""
    domains = summary['domains']
    header = ['Class'] + domains + ['All']
    rows = []
    for name, overall in summary['per_class_iou'].items():
        per_domain = [
            _nanmean([
                np.nan if s['per_class_iou'][name] is None else
                s['per_class_iou'][name] for s in summary['segments']
                if s['domain'] == d
            ]) for d in domains
        ]
        rows.append([name] + [format_score(v)
                              for v in per_domain] + [format_score(overall)])
    return _layout(header, rows, title)


def _layout(header: List[str], rows: List[List[str]], title: str) -> str:
    """Align a text table; ``title`` (if any) on the first line."""
    widths = [
        max(len(r[i]) for r in rows + [header]) for i in range(len(header))
    ]
    lines = [title] if title else []
    lines.append(' | '.join(h.ljust(w) for h, w in zip(header, widths)))
    lines.append('-+-'.join('-' * w for w in widths))
    lines += [' | '.join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    return '\n'.join(lines)


def format_score(value) -> str:
    """A score with one decimal; ``'-'`` for None or NaN (no pixels)."""
    return '-' if value is None or np.isnan(value) else f'{value:.1f}'


def _json_safe(value):
    """NaN becomes null, +-inf ``"inf"``/``"-inf"``: strict JSON."""
    if isinstance(value, (float, np.floating)) and not np.isfinite(value):
        return None if np.isnan(value) else str(float(value))
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def write_json_atomic(data: dict, path: str) -> None:
    """Write strict JSON with :func:`~mmseg_ecotta.utils.atomic_write`."""
    atomic_write(
        path,
        lambda f: json.dump(_json_safe(data), f, indent=2, allow_nan=False),
        binary=False)
