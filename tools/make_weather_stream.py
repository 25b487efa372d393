"""Corrupt held-out frames into an ACDC-layout weather stream.

The real-image dev benchmark (data/README.md) is CamVid's test frames in
two parts, ``select`` (choosing defaults) and ``report``
(:func:`~mmseg_ecotta.datasets.camvid.dev_part`), corrupted at severities
3 and 5; any other name is a split folder read whole (e.g. ``val``)::

    python tools/make_weather_stream.py data/camvid --split select report \\
        --severity 3 --out data/camvid_weather_s3
"""
import argparse

from mmseg_ecotta.datasets.camvid import DEV_PARTS, stream_frames
from mmseg_ecotta.datasets.corrupted_stream import (ACDC_STAND_INS,
                                                    write_corrupted_stream)


def main() -> None:
    """Write one ACDC-layout stream per split given."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('city_root', help='Cityscapes-layout dataset root')
    parser.add_argument('--split', nargs='+', default=list(DEV_PARTS))
    parser.add_argument('--severity', type=int, default=3)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', required=True, help='stream root')
    parser.add_argument(
        '--clear',
        action='store_true',
        help='also write every frame unchanged as condition "clear"')
    args = parser.parse_args()
    for split in args.split:
        source = stream_frames(args.city_root, split)
        counts = write_corrupted_stream(
            args.city_root,
            out=args.out,
            severity=args.severity,
            seed=args.seed,
            **source)
        if args.clear:
            write_corrupted_stream(
                args.city_root,
                out=args.out,
                severity=args.severity,
                conditions=dict(clear=None),
                **source)
        print(f'{split}: {counts} frames (' +
              ', '.join(f'{k}={v}'
                        for k, v in ACDC_STAND_INS.items()) + ') -> '
              f'{args.out}')


if __name__ == '__main__':
    main()
