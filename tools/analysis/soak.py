"""Soak benchmark: memory must not grow with the number of adapted images.

Runs a config's stream (repeated to at least ``--steps`` images) through
the real runner, as ``tools/test_tta.py`` does (hook, metric, adaptation
state and results writes), samples resident memory (and CUDA memory on a
GPU) every ``--interval`` images and fits a line to the second half;
exits with 1 when the projected growth over the run exceeds max(5% of
RSS, 20 MiB). See :mod:`mmseg_ecotta.analysis.soak`.

    python tools/analysis/soak.py CONFIG CHECKPOINT --steps 2000 \\
        [--interval 20] [--work-dir DIR] [--json OUT] [--threads N] \\
        [--cfg-options k=v ...] [--unsafe-load]
"""
import argparse
import json
import sys

import torch
from mmengine.config import DictAction

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
        '--steps',
        type=int,
        default=2000,
        help='images to adapt on, at least (whole rounds of the stream)')
    parser.add_argument(
        '--interval', type=int, default=20, help='images between samples')
    parser.add_argument(
        '--work-dir', help='the run\'s work dir (default: a temporary one)')
    parser.add_argument(
        '--threads', type=int, help='torch CPU threads (default: torch)')
    parser.add_argument('--json', help='also write the result to this file')
    add_unsafe_load_arg(parser)
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in the config, key=value')
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
        work_dir=args.work_dir,
        cfg_options=args.cfg_options)
    print(format_soak(result))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=1)
    return 1 if result['grows'] else 0


if __name__ == '__main__':
    sys.exit(main())
