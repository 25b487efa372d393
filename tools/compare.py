"""Compare TTA methods over the same stream: tables, CSV, JSON and plots.

Runs every config through ``tools/test_tta.py`` (one process each, one after
the other; ``--gpus N`` runs up to N at once, one per device) and writes
``WORK_DIR/comparison.{md,csv,json}``, ``comparison_miou.png`` (mIoU per
domain over the stream) and ``comparison_memory.png`` (memory vs. mIoU):
:func:`mmseg_ecotta.apis.compare_configs`.

    python tools/compare.py CONFIG [CONFIG ...] --checkpoint CKPT [CKPT ...]
        --work-dir DIR [--rounds N] [--cfg-options k=v ...] [--gpus N]
        [--unsafe-load]
"""
import argparse
import sys

import mmseg_ecotta  # noqa: F401  (compat shims + registration)
from mmseg_ecotta.apis import compare_configs
from mmseg_ecotta.utils import add_unsafe_load_arg


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('configs', nargs='+', help='TTA config files')
    parser.add_argument(
        '--checkpoint',
        nargs='+',
        required=True,
        help='one checkpoint for all configs, or one per config')
    parser.add_argument(
        '--work-dir',
        required=True,
        help='comparison files here, each run in WORK_DIR/<config name>')
    parser.add_argument(
        '--rounds', type=int, help='rounds of the stream (config default)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        default=[],
        help='key=value overrides passed to every run')
    parser.add_argument(
        '--gpus',
        type=int,
        default=0,
        help='run up to N methods at once, one per GPU (default: in turn)')
    add_unsafe_load_arg(parser)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    try:
        table = compare_configs(
            args.configs,
            args.checkpoint,
            args.work_dir,
            # Each run reads the config key (tools/test_tta.py).
            cfg_options=args.cfg_options +
            (['unsafe_load=True'] if args.unsafe_load else []),
            rounds=args.rounds,
            gpus=args.gpus,
            echo=print)
    except RuntimeError as e:
        sys.exit(str(e))
    print()
    print(table)
    print(f'written to {args.work_dir}/comparison.{{md,csv,json}}, '
          'comparison_miou.png, comparison_memory.png')


if __name__ == '__main__':
    main()
