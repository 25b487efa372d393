"""Write a weather stream in ACDC's layout from a Cityscapes-layout split.

A real-image stand-in for ACDC: held-out frames of any labelled driving
dataset in Cityscapes' layout (e.g. CamVid, :mod:`.camvid`), each corrupted
once by :class:`WeatherCorruption` and written where :class:`ACDCDataset`
reads, so streams are fixed files (fast to read, identical in every run)::

    <out>/rgb_anon/<condition>/<split>/<sequence>/<stem>_rgb_anon.png
    <out>/gt/<condition>/<split>/<sequence>/<stem>_gt_labelTrainIds.png

As in ACDC, every condition gets its own frames: the split's frames, in
sorted order, are dealt to the conditions in turn (frame i goes to
condition i mod K), so each condition covers every sequence of the split.
"""
import glob
import os
import os.path as osp
import shutil
from typing import Dict, List, Optional, Tuple

import cv2

from .transforms import WeatherCorruption

# ACDC's conditions and the corruption standing in for each.
ACDC_STAND_INS: Dict[str, str] = dict(
    fog='fog', night='darkness', rain='rain', snow='snow')


def write_corrupted_stream(
        city_root: str,
        split: str,
        out: str,
        severity: int,
        conditions: Dict[str, Optional[str]] = ACDC_STAND_INS,
        out_split: str = None,
        seed: int = 0,
        backend: str = 'imagecorruptions',
        stems: Optional[List[str]] = None) -> Dict[str, int]:
    """Corrupt ``city_root``'s ``split`` frames into an ACDC-layout stream.

    Args:
        city_root (str): Cityscapes-layout root (``leftImg8bit/``,
            ``gtFine/`` with ``*_gtFine_labelTrainIds.png``).
        split (str): Split to read, e.g. ``'test'``.
        out (str): Output root of the stream.
        severity (int): Corruption severity, 1..5.
        conditions (dict): Condition folder -> corruption name (None: the
            frames unchanged, e.g. a ``clear`` reference), in stream order.
            Default: ``ACDC_STAND_INS``.
        out_split (str, optional): Split folder to write. Default: ``split``.
        seed (int): Corruption seed (combined with each file name).
        backend (str): ``WeatherCorruption`` backend.
        stems (list[str], optional): Only these frames (file stems, e.g.
            ``Seq05VD_f00030``). Default: every frame of the split.

    Returns:
        dict: Frames written per condition.

    Raises:
        FileNotFoundError: No frames in the split, or a frame without label.
    """
    frames = _frames(city_root, split, stems)
    transforms = {
        name: WeatherCorruption(corruption, severity, seed, backend)
        for name, corruption in conditions.items() if corruption is not None
    }
    counts = {name: 0 for name in conditions}
    names = list(conditions)
    for index, (img_path, label_path) in enumerate(frames):
        name = names[index % len(names)]
        sequence = osp.basename(osp.dirname(img_path))
        stem = osp.basename(img_path)[:-len('_leftImg8bit.png')]
        rel = osp.join(name, out_split or split, sequence)
        img = cv2.imread(img_path, cv2.IMREAD_COLOR)
        if img is None:
            raise ValueError(f'{img_path} is not a readable image')
        if name in transforms:
            img = transforms[name](dict(img=img, img_path=img_path))['img']
        img_out = osp.join(out, 'rgb_anon', rel, f'{stem}_rgb_anon.png')
        gt_out = osp.join(out, 'gt', rel, f'{stem}_gt_labelTrainIds.png')
        for path in (img_out, gt_out):
            os.makedirs(osp.dirname(path), exist_ok=True)
        cv2.imwrite(img_out, img)
        shutil.copyfile(label_path, gt_out)
        counts[name] += 1
    return counts


def _frames(city_root: str,
            split: str,
            stems: Optional[List[str]] = None) -> List[Tuple[str, str]]:
    """Sorted (image, train-id label) pairs of a Cityscapes-layout split."""
    images = sorted(
        glob.glob(
            osp.join(city_root, 'leftImg8bit', split, '*',
                     '*_leftImg8bit.png')))
    if stems is not None:
        by_stem = {
            osp.basename(p)[:-len('_leftImg8bit.png')]: p
            for p in images
        }
        missing = sorted(set(stems) - set(by_stem))
        if missing:
            raise FileNotFoundError(
                f'{len(missing)} frames asked for are not in {split!r} '
                f'of {city_root}, e.g. {missing[0]!r}')
        images = sorted(by_stem[s] for s in set(stems))
    if not images:
        raise FileNotFoundError(
            f'no */*_leftImg8bit.png under '
            f'{osp.join(city_root, "leftImg8bit", split)}: convert the '
            f'dataset first (see data/README.md)')
    pairs = []
    for img_path in images:
        label_path = img_path.replace(
            osp.join(city_root, 'leftImg8bit'), osp.join(city_root, 'gtFine'),
            1).replace('_leftImg8bit.png', '_gtFine_labelTrainIds.png')
        if not osp.isfile(label_path):
            raise FileNotFoundError(
                f'frame {img_path} has no label {label_path}')
        pairs.append((img_path, label_path))
    return pairs
