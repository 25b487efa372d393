"""Summarise what a run's test-time updates did, per stream segment.

Reads ``WORK_DIR/adaptation_trace.json`` (``tools/test_tta.py --trace``)
and prints, per (round, domain): the mean loss, entropy and confident-pixel
share, the mean gradient norm and, at the segment's end, the drift of each
parameter group. With ``--against OTHER_WORK_DIR`` (e.g. the same model at
``lr=0``, no update) it also prints the per-class IoU of both runs, mean
over the stream, and their difference.

    python tools/analysis/adaptation_trace.py WORK_DIR [--against OTHER]
"""
import argparse
import json
import os.path as osp
from collections import OrderedDict
from typing import Dict, List


def load_json(work_dir: str, name: str) -> dict:
    path = osp.join(work_dir, name)
    if not osp.isfile(path):
        fix = ('run tools/test_tta.py with --trace'
               if name == 'adaptation_trace.json' else 'run tools/test_tta.py')
        raise FileNotFoundError(f'{path} does not exist: {fix}')
    with open(path) as f:
        return json.load(f)


def segment_table(rows: List[dict]) -> List[str]:
    """One Markdown line per (round, domain) segment of the trace rows."""
    segments: Dict[tuple, List[dict]] = OrderedDict()
    for row in rows:
        segments.setdefault((row['round'], row['domain']), []).append(row)
    groups = sorted({g for row in rows for g in row['drift']})
    lines = [
        '| round | domain | updates | loss | entropy | confident | ' +
        ' | '.join(f'grad {g}' for g in groups) + ' | ' +
        ' | '.join(f'drift {g}' for g in groups) + ' |',
        '|' + '---|' * (6 + 2 * len(groups))
    ]
    for (rnd, domain), seg in segments.items():

        def mean(key):
            return sum(r[key] for r in seg) / len(seg)

        grads = [
            sum(r['grad'].get(g, 0.0) for r in seg) / len(seg) for g in groups
        ]
        drifts = [seg[-1]['drift'].get(g, 0.0) for g in groups]
        lines.append(f'| {rnd + 1} | {domain} | {len(seg)} | '
                     f"{mean('loss'):.4f} | {mean('entropy'):.4f} | "
                     f"{mean('confident'):.3f} | " +
                     ' | '.join(f'{v:.3g}' for v in grads) + ' | ' +
                     ' | '.join(f'{v:.3g}' for v in drifts) + ' |')
    return lines


def class_table(ours: dict, other: dict, names: List[str]) -> List[str]:
    """Per-class IoU of two runs' results and the difference."""
    lines = [
        f'| class | {names[0]} | {names[1]} | difference |',
        '|---|---|---|---|'
    ]
    for cls, iou in ours['per_class_iou'].items():
        base = other['per_class_iou'].get(cls)
        if iou is None or base is None:
            continue
        lines.append(f'| {cls} | {iou:.2f} | {base:.2f} | {iou - base:+.2f} |')
    lines.append(f"| mIoU | {ours['mean_mIoU']:.2f} | "
                 f"{other['mean_mIoU']:.2f} | "
                 f"{ours['mean_mIoU'] - other['mean_mIoU']:+.2f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('work_dir', help='work dir of a --trace run')
    parser.add_argument(
        '--against', help='work dir of a run to compare per-class IoU with')
    args = parser.parse_args()
    trace = load_json(args.work_dir, 'adaptation_trace.json')
    print(f"{trace['method']}: {len(trace['rows'])} updates, confident = "
          f"entropy below {trace['threshold']:.3f} nats")
    print('\n'.join(segment_table(trace['rows'])))
    if args.against:
        print()
        print('\n'.join(
            class_table(
                load_json(args.work_dir, 'tta_results.json'),
                load_json(args.against, 'tta_results.json'), [
                    osp.basename(osp.normpath(d))
                    for d in (args.work_dir, args.against)
                ])))


if __name__ == '__main__':
    main()
