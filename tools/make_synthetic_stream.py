"""Generate the embedded synthetic Cityscapes -> ACDC stream.

Example::

    python tools/make_synthetic_stream.py --out data/synthetic --seed 0
"""

import argparse
import os.path as osp
import time

from mmseg_ecotta.synthetic import CONDITIONS, generate_synthetic_stream


def parse_args() -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description='Generate the synthetic Cityscapes -> ACDC stream.')
    parser.add_argument(
        '--out', default='data/synthetic', help='output root directory')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--num-train', type=int, default=200)
    parser.add_argument('--num-val', type=int, default=40)
    parser.add_argument('--num-per-condition', type=int, default=40)
    parser.add_argument('--height', type=int, default=128)
    parser.add_argument('--width', type=int, default=256)
    parser.add_argument(
        '--conditions',
        nargs='+',
        default=list(CONDITIONS),
        choices=list(CONDITIONS))
    return parser.parse_args()


def main() -> None:
    """Generate the stream and report what was written."""
    args = parse_args()
    start = time.perf_counter()
    manifest = generate_synthetic_stream(
        args.out,
        seed=args.seed,
        num_train=args.num_train,
        num_val=args.num_val,
        num_per_condition=args.num_per_condition,
        height=args.height,
        width=args.width,
        conditions=tuple(args.conditions))
    elapsed = time.perf_counter() - start
    print(f'wrote synthetic stream to {osp.abspath(args.out)} '
          f'(seed {manifest["seed"]}, {manifest["height"]}x'
          f'{manifest["width"]}, generator v{manifest["version"]})')
    for key, value in manifest['counts'].items():
        print(f'  {key}: {value} images')
    print(f'  manifest: {osp.join(args.out, "manifest.json")}')
    print(f'elapsed: {elapsed:.1f} s')


if __name__ == '__main__':
    main()
