"""Soak benchmark: memory must not grow with the number of adaptation steps.

Adapts a config's method for ``--steps`` steps over its stream (cycled),
samples resident memory (and CUDA memory on a GPU) every ``--interval``
steps and fits a line to the second half; exits with 1 when the projected
growth over the run exceeds max(5% of RSS, 20 MiB). See
:mod:`mmseg_ecotta.analysis.soak`.

    python tools/analysis/soak.py CONFIG CHECKPOINT --steps 2000 \\
        [--interval 20] [--device cpu|cuda] [--json OUT] [--threads N]
        [--unsafe-load]
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0,
                osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
import torch

import mmseg_ecotta  # noqa: F401  (compat shims + registration)
from mmseg_ecotta.analysis import format_soak, run_soak
from mmseg_ecotta.safe_load import allow_unsafe_load
from mmseg_ecotta.utils import add_unsafe_load_arg


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='TTA config file')
    parser.add_argument(
        'checkpoint', nargs='?', help='weights (default: random init)')
    parser.add_argument(
        '--steps', type=int, default=2000, help='adaptation steps')
    parser.add_argument(
        '--interval', type=int, default=20, help='steps between samples')
    parser.add_argument('--device', default='cpu', help="'cpu' or 'cuda'")
    parser.add_argument(
        '--threads', type=int, help='torch CPU threads (default: torch)')
    parser.add_argument('--json', help='also write the result to this file')
    add_unsafe_load_arg(parser)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    if args.unsafe_load:
        allow_unsafe_load('--unsafe-load')
    if args.threads:
        torch.set_num_threads(args.threads)
    result = run_soak(
        args.config,
        args.checkpoint,
        steps=args.steps,
        interval=args.interval,
        device=args.device)
    print(format_soak(result))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=1)
    return 1 if result['grows'] else 0


if __name__ == '__main__':
    sys.exit(main())
