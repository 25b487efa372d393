"""Keep only the weights of an mmengine checkpoint (as mmseg's publish tool).

    python tools/publish_checkpoint.py work_dirs/x/iter_3000.pth OUT.pth
        [--unsafe-load]

    python tools/publish_checkpoint.py A.pth B.pth C.pth OUT.pth

With several checkpoints of one model (e.g. a warm-up trained at several
seeds), the output holds their uniform average, a "model soup": floating
point tensors are averaged, integer ones (BN batch counters) kept from the
first. The output holds plain data only (tensors, numbers, strings, lists,
dicts), so it loads with ``torch.load(weights_only=True)`` and no
allow-list.
"""
import argparse
import os
import os.path as osp
from typing import Dict, List

import torch
from mmengine.runner import CheckpointLoader

import mmseg_ecotta  # noqa: F401  (the safe checkpoint loader)
from mmseg_ecotta.safe_load import allow_unsafe_load, save_plain
from mmseg_ecotta.utils import add_unsafe_load_arg


def average(state_dicts: List[Dict[str, torch.Tensor]],
            names: List[str]) -> Dict[str, torch.Tensor]:
    """The uniform average of state dicts with the same keys and shapes."""
    first = state_dicts[0]
    for state_dict, name in zip(state_dicts[1:], names[1:]):
        for key in set(first) ^ set(state_dict):
            raise ValueError(
                f'{key!r} is in only one of {names[0]} and {name}: average '
                'checkpoints of one model config')
        for key, value in first.items():
            if state_dict[key].shape != value.shape:
                raise ValueError(
                    f'{key!r} has shape {tuple(value.shape)} in {names[0]} '
                    f'but {tuple(state_dict[key].shape)} in {name}: average '
                    'checkpoints of one model config')
    soup = dict(first)
    for key, value in first.items():
        if value.is_floating_point():
            # Summed in float64, so one checkpoint publishes bit for bit.
            total = sum(state_dict[key].double() for state_dict in state_dicts)
            soup[key] = (total / len(state_dicts)).to(value.dtype)
    return soup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        'checkpoints',
        nargs='+',
        help='one checkpoint, or several of one model to average')
    parser.add_argument('out')
    add_unsafe_load_arg(parser)
    args = parser.parse_args()
    if args.unsafe_load:
        allow_unsafe_load('--unsafe-load')
    ckpts = [
        CheckpointLoader.load_checkpoint(path, map_location='cpu')
        for path in args.checkpoints
    ]
    names = [osp.basename(path) for path in args.checkpoints]
    meta = ckpts[0].get('meta', {})
    slim = dict(
        state_dict=average([ckpt['state_dict'] for ckpt in ckpts], names),
        meta=dict(
            dataset_meta=meta.get('dataset_meta'),
            iter=meta.get('iter'),
            source=names[0] if len(names) == 1 else names))
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    save_plain(slim, args.out)
    print(f'{args.out}: {osp.getsize(args.out) / 2**20:.2f} MiB')


if __name__ == '__main__':
    main()
