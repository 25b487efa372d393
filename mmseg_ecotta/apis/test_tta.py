"""Continual test-time adaptation: adapt and evaluate over a stream.

Mirrors mmseg's ``tools/test.py``: config -> Runner -> test. The config's
``adaptation`` names the method and its settings; the
results (mIoU per domain and round, per-class IoU, cost) are printed and
written to ``WORK_DIR/tta_results.json`` after every domain.

    python tools/test_tta.py CONFIG CHECKPOINT [--work-dir DIR]
        [--cfg-options k=v ...] [--show-dir DIR] [--export-adapted]
        [--resume] [--unsafe-load] [--launcher pytorch]

On a terminal a progress bar shows the ETA and the running mIoU of the
current domain. The same entry point runs installed, from any directory:
``python -m mmseg_ecotta.apis.test_tta`` or ``mmseg-ecotta-test``.
"""
import argparse
import sys

from ..utils import add_runner_args, load_config, parse_runner_args
from .builder import build_runner, tta_test_config


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='TTA config file')
    parser.add_argument('checkpoint', help='source (or warmed-up) weights')
    parser.add_argument('--work-dir', help='where results and logs go')
    parser.add_argument(
        '--show-dir',
        help='write image | ground truth | prediction overlays here')
    parser.add_argument(
        '--show-interval',
        type=int,
        default=20,
        help='spacing in images of the drawn frames within each domain')
    parser.add_argument(
        '--show-frames',
        type=int,
        default=2,
        help='frames drawn per domain and round (with --show-dir)')
    parser.add_argument(
        '--export-adapted',
        nargs='?',
        const='final',
        choices=['final', 'every-domain'],
        help='save the adapted model as an mmseg checkpoint in the work '
        'dir: adapted_final.pth, and with every-domain also '
        'adapted_round{R}_{domain}.pth')
    parser.add_argument(
        '--resume',
        action='store_true',
        help='continue an interrupted stream from WORK_DIR/tta_state.pth '
        '(written every adaptation.checkpoint_interval steps and at '
        'every domain boundary); pass the same --work-dir')
    add_runner_args(parser)
    return parse_runner_args(parser)


def main() -> None:
    args = parse_args()
    cfg = load_config(args.config, args.cfg_options, args.work_dir,
                      args.unsafe_load)
    cfg = tta_test_config(
        cfg,
        args.checkpoint,
        launcher=args.launcher,
        resume=args.resume,
        show_dir=args.show_dir,
        show_frames=args.show_frames,
        show_interval=args.show_interval,
        export_adapted=args.export_adapted,
        progress=sys.stdout.isatty())  # a progress bar; CI logs stay plain
    build_runner(cfg).test()


if __name__ == '__main__':
    main()
