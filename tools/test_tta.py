"""Continual test-time adaptation: adapt and evaluate over a stream.

Mirrors mmseg's ``tools/test.py``: config -> Runner -> test. The config's
``custom_hooks`` hold a ``TestTimeAdaptationHook`` naming the method; the
results (mIoU per domain and round, per-class IoU, cost) are printed and
written to ``WORK_DIR/tta_results.json`` after every domain.

    python tools/test_tta.py CONFIG CHECKPOINT [--work-dir DIR]
        [--cfg-options k=v ...] [--show-dir DIR] [--launcher pytorch]
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from mmengine.config import DictAction
from mmengine.runner import Runner

import mmseg_ecotta  # noqa: F401  (shims + registration first)
from mmseg_ecotta.tta import TTA_METHODS
from mmseg_ecotta.utils import load_config

HOOK = 'TestTimeAdaptationHook'


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
        help='draw one frame every N images (with --show-dir)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in the config, key=value')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main() -> None:
    args = parse_args()
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(
            f'checkpoint {args.checkpoint!r} does not exist; for the '
            'embedded default see data/checkpoints/ (README)')
    cfg = load_config(args.config, args.cfg_options, args.work_dir)
    hooks = [h for h in cfg.get('custom_hooks', []) if h['type'] == HOOK]
    if not hooks:
        raise ValueError(
            f'{args.config} has no {HOOK} in custom_hooks; add e.g. '
            f"custom_hooks = [dict(type='{HOOK}', method=dict(type='Tent'))]"
            f' (methods: {sorted(TTA_METHODS.module_dict)})')
    cfg.load_from = args.checkpoint
    cfg.launcher = args.launcher
    if args.show_dir:
        vis = cfg.default_hooks.visualization
        vis.update(draw=True, interval=args.show_interval)
        vis['show_dir'] = args.show_dir
    Runner.from_cfg(cfg).test()


if __name__ == '__main__':
    main()
