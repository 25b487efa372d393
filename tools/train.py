"""Train with mmengine, e.g. the EcoTTA warm-up of the meta networks.

Mirrors mmseg's ``tools/train.py``: config -> Runner -> train.

    python tools/train.py configs/ecotta/ecotta-warmup_*.py [--work-dir DIR]
        [--resume] [--unsafe-load]
    python -m torch.distributed.launch --nproc_per_node=4 \\
        tools/train.py CONFIG --launcher pytorch
"""
import argparse

from mmengine.runner import Runner

import mmseg_ecotta  # noqa: F401  (compat shims + registration)
from mmseg_ecotta.utils import add_runner_args, load_config, parse_runner_args


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='where to save logs and models')
    parser.add_argument(
        '--resume', action='store_true', help='resume from the latest ckpt')
    add_runner_args(parser)
    return parse_runner_args(parser)


def main() -> None:
    args = parse_args()
    cfg = load_config(args.config, args.cfg_options, args.work_dir,
                      args.unsafe_load)
    cfg.launcher = args.launcher
    cfg.resume = args.resume
    Runner.from_cfg(cfg).train()


if __name__ == '__main__':
    main()
