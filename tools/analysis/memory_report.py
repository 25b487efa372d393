"""Memory and time of one adaptation step, per method, side by side.

Builds each config's model with random weights (no checkpoint: memory does
not depend on the values) and its TestTimeAdaptationHook's method, then
measures one step; see :mod:`mmseg_ecotta.analysis.memory` for every
column and the paper-style analytic count.

    python tools/analysis/memory_report.py configs/*/*_cityscapes2acdc-*.py \\
        --shape 512 1024 --batch 1 [--device cpu|cuda] [--json OUT] \\
        [--variants 'ecotta-*' tent-stock] [--steps 3] [--threads 2]
"""
import argparse
import json
import os
import os.path as osp
import platform
import sys
from typing import List

import torch

import mmseg_ecotta  # noqa: F401  (compat shims + registration)
from mmseg_ecotta.analysis import (MemoryRow, format_markdown, rows_to_json,
                                   run_memory_report)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('configs', nargs='+', help='TTA config files')
    parser.add_argument(
        '--shape',
        nargs=2,
        type=int,
        default=[512, 1024],
        metavar=('H', 'W'),
        help='input height and width')
    parser.add_argument('--batch', type=int, default=1, help='batch size')
    parser.add_argument(
        '--device', default='cpu', help="'cpu' or 'cuda' (CUDA peaks)")
    parser.add_argument(
        '--steps',
        type=int,
        default=3,
        help='timed steps per row after one warm-up step (median)')
    parser.add_argument(
        '--max-step-seconds',
        type=float,
        help='do not time more steps of a row whose warm-up step took '
        'longer; report the warm-up time (e.g. CoTTA on CPU)')
    parser.add_argument(
        '--variants',
        nargs='+',
        help="keep only rows matching these patterns, e.g. 'ecotta-*'")
    parser.add_argument(
        '--threads', type=int, help='torch CPU threads (default: torch)')
    parser.add_argument('--json', help='also write the rows to this file')
    return parser.parse_args()


def write_json(path: str, rows: List[MemoryRow],
               args: argparse.Namespace) -> None:
    """Write ``rows`` and the run's settings to ``path``."""
    device_name = (
        torch.cuda.get_device_name(torch.device(args.device))
        if args.device.startswith('cuda') else platform.processor()
        or platform.machine())
    data = rows_to_json(
        rows,
        command=' '.join([osp.relpath(sys.argv[0])] + sys.argv[1:]),
        shape=list(args.shape),
        batch=args.batch,
        device=args.device,
        device_name=device_name,
        threads=torch.get_num_threads(),
        torch=torch.__version__)
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(data, f, indent=2)


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = run_memory_report(
        args.configs,
        tuple(args.shape),
        batch=args.batch,
        device=args.device,
        steps=args.steps,
        patterns=args.variants,
        max_step_seconds=args.max_step_seconds,
        # Rewritten after every row: a long CPU run keeps what it measured.
        on_row=(lambda done: write_json(args.json, done, args))
        if args.json else None)
    shape = 'x'.join(map(str, args.shape))
    print(f'\nOne adaptation step, input {shape}, batch {args.batch}, '
          f'device {args.device}; sizes in MiB\n')
    print(format_markdown(rows))
    if args.json:
        print(f'\nwrote {args.json}')


if __name__ == '__main__':
    main()
