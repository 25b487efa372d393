"""Keep only the weights of an mmengine checkpoint (as mmseg's publish tool).

    python tools/publish_checkpoint.py work_dirs/x/iter_3000.pth OUT.pth
"""
import argparse
import os
import os.path as osp
import sys

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from mmengine.runner.checkpoint import _load_checkpoint

import mmseg_ecotta  # noqa: F401  (lets torch.load read mmengine's meta)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('checkpoint')
    parser.add_argument('out')
    args = parser.parse_args()
    ckpt = _load_checkpoint(args.checkpoint, map_location='cpu')
    meta = ckpt.get('meta', {})
    slim = dict(
        state_dict=ckpt['state_dict'],
        meta=dict(
            dataset_meta=meta.get('dataset_meta'),
            iter=meta.get('iter'),
            source=osp.basename(args.checkpoint)))
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    torch.save(slim, args.out)
    print(f'{args.out}: {osp.getsize(args.out) / 2**20:.2f} MiB')


if __name__ == '__main__':
    main()
