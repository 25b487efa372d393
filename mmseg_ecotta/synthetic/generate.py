"""Write a synthetic Cityscapes -> ACDC stream to disk.

Source (clear) scenes are stored in the exact Cityscapes layout, target
scenes (new scenes, from a different random stream) in the exact ACDC
layout, once per adverse condition plus a ``clear`` rendering of the
very same target scenes so that the drop caused purely by the weather
can be measured.

Every image uses its own child seed derived from ``(seed, domain,
condition, index)``, so the output does not depend on generation order
and the same seed always yields byte-identical PNGs.
"""

import json
import os
import os.path as osp
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np

from .scenes import CLASSES, IGNORE_INDEX, render_scene
from .weather import CONDITIONS, apply_weather

GENERATOR_VERSION = '1.0'

# Synthetic city names of the source splits (Cityscapes layout).
SOURCE_CITIES: Dict[str, str] = {'train': 'synthcity', 'val': 'synthvalcity'}

# Two GoPro-style recording sequences per condition (ACDC layout). The
# ``clear`` renderings reuse the sequence names of their condition so
# ``clear/train/GOPR0475/...`` pairs with ``fog/train/GOPR0475/...``.
SEQUENCES: Dict[str, Tuple[str, str]] = {
    'fog': ('GOPR0475', 'GP010475'),
    'night': ('GOPR0351', 'GP010351'),
    'rain': ('GOPR0400', 'GP010400'),
    'snow': ('GOPR0122', 'GP010122'),
}

# Domain tags mixed into the child seeds so that source, target scenes
# and the weather draws are independent random streams.
_DOMAIN_SOURCE_TRAIN = 0
_DOMAIN_SOURCE_VAL = 1
_DOMAIN_TARGET_SCENE = 2
_DOMAIN_TARGET_WEATHER = 3


def _rng(*key: int) -> np.random.Generator:
    """Generator seeded from a tuple of non-negative integers."""
    return np.random.default_rng(np.random.SeedSequence(list(key)))


def _write_rgb(path: str, image: np.ndarray) -> None:
    """Write an RGB uint8 image as PNG (OpenCV expects BGR)."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    if not cv2.imwrite(path, np.ascontiguousarray(image[:, :, ::-1])):
        raise IOError(f'failed to write {path}')


def _write_label(path: str, label: np.ndarray) -> None:
    """Write a single-channel uint8 label PNG."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    if not cv2.imwrite(path, np.ascontiguousarray(label, np.uint8)):
        raise IOError(f'failed to write {path}')


def cityscapes_paths(out_dir: str, split: str, index: int) -> Tuple[str, str]:
    """Image and label path of one source image (Cityscapes layout).

    Args:
        out_dir: Root of the synthetic stream.
        split: ``'train'`` or ``'val'``.
        index: Image index within the split.

    Returns:
        ``(image_path, label_path)``.
    """
    city = SOURCE_CITIES[split]
    stem = f'{city}_{index:06d}_{19:06d}'
    root = osp.join(out_dir, 'cityscapes')
    return (osp.join(root, 'leftImg8bit', split, city,
                     f'{stem}_leftImg8bit.png'),
            osp.join(root, 'gtFine', split, city,
                     f'{stem}_gtFine_labelTrainIds.png'))


def acdc_paths(out_dir: str, folder: str, seq: str,
               frame: int) -> Tuple[str, str]:
    """Image and label path of one target image (ACDC layout).

    Args:
        out_dir: Root of the synthetic stream.
        folder: Condition folder (``'fog'``, ..., or ``'clear'``).
        seq: Sequence name such as ``'GOPR0475'``.
        frame: Frame number.

    Returns:
        ``(image_path, label_path)``.
    """
    root = osp.join(out_dir, 'acdc')
    stem = f'{seq}_frame_{frame:06d}'
    return (osp.join(root, 'rgb_anon', folder, 'train', seq,
                     f'{stem}_rgb_anon.png'),
            osp.join(root, 'gt', folder, 'train', seq,
                     f'{stem}_gt_labelTrainIds.png'))


def _sequence_of(condition: str, index: int, total: int) -> str:
    """First half of a condition's images -> first sequence, etc."""
    seqs = SEQUENCES[condition]
    return seqs[min(index * len(seqs) // max(total, 1), len(seqs) - 1)]


def generate_synthetic_stream(out_dir: str,
                              seed: int = 0,
                              num_train: int = 200,
                              num_val: int = 40,
                              num_per_condition: int = 40,
                              height: int = 128,
                              width: int = 256,
                              conditions: Sequence[str] = CONDITIONS) -> dict:
    """Generate the source set and the adverse-weather target stream.

    Args:
        out_dir: Output root; gets ``cityscapes/``, ``acdc/`` and
            ``manifest.json``.
        seed: Master seed (non-negative).
        num_train: Number of source training images.
        num_val: Number of source validation images.
        num_per_condition: Target images per adverse condition.
        height: Image height in pixels.
        width: Image width in pixels.
        conditions: Adverse conditions to render, subset of
            :data:`~mmseg_ecotta.synthetic.weather.CONDITIONS`.

    Returns:
        The manifest dict that is also written to ``manifest.json``.

    Raises:
        ValueError: On an unknown condition or a negative seed.
    """
    if seed < 0:
        raise ValueError(f'seed must be non-negative, got {seed}')
    conditions = tuple(conditions)
    for cond in conditions:
        if cond not in CONDITIONS:
            raise ValueError(f'unknown weather condition {cond!r}; '
                             f'valid conditions are {CONDITIONS}')
    os.makedirs(out_dir, exist_ok=True)
    pixels = np.zeros(256, np.int64)

    def count(label: np.ndarray) -> None:
        pixels[:] += np.bincount(label.ravel(), minlength=256)

    # Source domain: clear scenes in the Cityscapes layout.
    for split, num, domain in (('train', num_train, _DOMAIN_SOURCE_TRAIN),
                               ('val', num_val, _DOMAIN_SOURCE_VAL)):
        for i in range(num):
            scene = render_scene(_rng(seed, domain, i), height, width)
            img_path, lbl_path = cityscapes_paths(out_dir, split, i)
            _write_rgb(img_path, scene.image)
            _write_label(lbl_path, scene.label)
            if split == 'train':
                count(scene.label)

    # Target domain: new scenes, rendered clear and under the weather.
    target_pixels = np.zeros(256, np.int64)
    sequences: Dict[str, List[str]] = {}
    for cond in conditions:
        c = CONDITIONS.index(cond)  # global index: order-independent
        used: List[str] = []
        for i in range(num_per_condition):
            scene = render_scene(
                _rng(seed, _DOMAIN_TARGET_SCENE, c, i), height, width)
            adverse = apply_weather(cond, scene.image, scene.depth,
                                    _rng(seed, _DOMAIN_TARGET_WEATHER, c, i))
            seq = _sequence_of(cond, i, num_per_condition)
            if seq not in used:
                used.append(seq)
            for folder, image in ((cond, adverse), ('clear', scene.image)):
                img_path, lbl_path = acdc_paths(out_dir, folder, seq, i)
                _write_rgb(img_path, image)
                _write_label(lbl_path, scene.label)
            target_pixels += np.bincount(scene.label.ravel(), minlength=256)
        sequences[cond] = used

    def named(counts: np.ndarray) -> Dict[str, int]:
        out = {name: int(counts[k]) for k, name in enumerate(CLASSES)}
        out['ignore'] = int(counts[IGNORE_INDEX])
        return out

    manifest = dict(
        generator='mmseg_ecotta.synthetic',
        version=GENERATOR_VERSION,
        seed=int(seed),
        height=int(height),
        width=int(width),
        num_train=int(num_train),
        num_val=int(num_val),
        num_per_condition=int(num_per_condition),
        conditions=list(conditions),
        sequences=sequences,
        cityscapes_root='cityscapes',
        acdc_root='acdc',
        source_cities=dict(SOURCE_CITIES),
        counts=dict(
            cityscapes_train=int(num_train),
            cityscapes_val=int(num_val),
            **{f'acdc_{cond}': int(num_per_condition)
               for cond in conditions},
            acdc_clear=int(num_per_condition * len(conditions))),
        class_pixels_source_train=named(pixels),
        class_pixels_target=named(target_pixels),
    )
    with open(osp.join(out_dir, 'manifest.json'), 'w') as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
        f.write('\n')
    return manifest
