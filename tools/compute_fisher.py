"""Diagonal Fisher information for EATA's anti-forgetting regulariser.

CONFIG is the TTA config of the method to regularise (its hook's method
decides the parameters and BN behaviour, so the file fits it); the images
are clean source images in Cityscapes' layout, no labels are read:

    python tools/compute_fisher.py CONFIG CHECKPOINT --out FILE
        [--data-root data/cityscapes/] [--split val] [--num-images 500]
        [--batch-size 64] [--cfg-options k=v ...] [--unsafe-load]

The Fisher is EATA's estimator: the squared gradient of each batch of
--batch-size images' mean loss, averaged over batches (EATA's beta = 2000
fits batches of 64).

e.g. configs/eata/eata_deeplabv3plus_r50-d8_*_cityscapes2acdc-540x960.py with
--out data/checkpoints/fisher_deeplabv3plus_r50-d8_cityscapes.pth.
"""
import argparse
import os
import os.path as osp

from mmengine.config import DictAction
from mmengine.logging import MMLogger

import mmseg_ecotta  # noqa: F401  (compat shims + registration)
from mmseg_ecotta.apis import fisher_from_config
from mmseg_ecotta.tta.fisher import save_fisher
from mmseg_ecotta.utils import add_unsafe_load_arg, load_config


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='TTA config (e.g. EATA)')
    parser.add_argument('checkpoint', help='source weights')
    parser.add_argument('--out', required=True, help='Fisher file to write')
    parser.add_argument(
        '--data-root',
        default='data/cityscapes/',
        help='Cityscapes-layout root with leftImg8bit/<split>/')
    parser.add_argument(
        '--split', default='val', help='folder under leftImg8bit')
    parser.add_argument(
        '--num-images',
        type=int,
        default=500,
        help='images to use (or all that exist)')
    parser.add_argument(
        '--batch-size',
        type=int,
        default=64,
        help='images per squared gradient (EATA: 64)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in the config, key=value')
    add_unsafe_load_arg(parser)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint {args.checkpoint!r} does not '
                                'exist')
    cfg = load_config(
        args.config, args.cfg_options, unsafe_load=args.unsafe_load)
    result = fisher_from_config(cfg, args.checkpoint, args.data_root,
                                args.split, args.num_images, args.batch_size)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    save_fisher(result, args.out, args.config, args.checkpoint)
    MMLogger.get_current_instance().info(
        f'Fisher of {len(result["fisher"])} parameters from '
        f'{result["num_images"]} images (batches of '
        f'{result["batch_size"]}) written to {args.out}')


if __name__ == '__main__':
    main()
