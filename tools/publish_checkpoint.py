"""Keep only the weights of an mmengine checkpoint (as mmseg's publish tool).

    python tools/publish_checkpoint.py work_dirs/x/iter_3000.pth OUT.pth
        [--unsafe-load]

The output holds plain data only (tensors, numbers, strings, lists, dicts),
so it loads with ``torch.load(weights_only=True)`` and no allow-list.
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from mmengine.runner import CheckpointLoader

import mmseg_ecotta  # noqa: F401  (the safe checkpoint loader)
from mmseg_ecotta.safe_load import allow_unsafe_load, save_plain
from mmseg_ecotta.utils import add_unsafe_load_arg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('checkpoint')
    parser.add_argument('out')
    add_unsafe_load_arg(parser)
    args = parser.parse_args()
    if args.unsafe_load:
        allow_unsafe_load('--unsafe-load')
    ckpt = CheckpointLoader.load_checkpoint(
        args.checkpoint, map_location='cpu')
    meta = ckpt.get('meta', {})
    slim = dict(
        state_dict=ckpt['state_dict'],
        meta=dict(
            dataset_meta=meta.get('dataset_meta'),
            iter=meta.get('iter'),
            source=osp.basename(args.checkpoint)))
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    save_plain(slim, args.out)
    print(f'{args.out}: {osp.getsize(args.out) / 2**20:.2f} MiB')


if __name__ == '__main__':
    main()
