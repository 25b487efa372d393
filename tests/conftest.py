"""Shared fixtures: tiny models and data folders in the real layouts."""
import os.path as osp
from typing import Dict

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import mmseg_ecotta  # noqa: F401  (shims and registration first)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
# Parametrize device-dependent tests with this; CUDA runs where available.
DEVICES = [
    'cpu',
    pytest.param(
        'cuda',
        marks=pytest.mark.skipif(
            not torch.cuda.is_available(), reason='needs CUDA')),
]

TINY_MODEL = osp.join(REPO, 'configs/_base_/models/deeplabv3plus_r18-tiny.py')
TINY_META_MODEL = osp.join(
    REPO, 'configs/_base_/models/deeplabv3plus_r18-tiny_meta.py')


def build_model(config: str, **overrides) -> torch.nn.Module:
    """Build the ``model`` of a config file, with dict overrides merged."""
    init_default_scope('mmseg')
    cfg = Config.fromfile(config)
    cfg.merge_from_dict({f'model.{k}': v for k, v in overrides.items()})
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def _scene(rng: np.random.Generator, h: int, w: int):
    """A random image and a blocky trainId label of the same size."""
    label = rng.integers(0, 19, (h // 8, w // 8), dtype=np.uint8)
    label = cv2.resize(label, (w, h), interpolation=cv2.INTER_NEAREST)
    label[rng.random((h, w)) < 0.02] = 255
    image = (label[..., None] * 13 % 255).astype(np.uint8).repeat(3, -1)
    image = np.clip(image + rng.normal(0, 10, image.shape), 0, 255)
    return image.astype(np.uint8), label


def write_cityscapes(root: str,
                     splits: Dict[str, int],
                     h: int = 64,
                     w: int = 128,
                     seed: int = 0) -> str:
    """Write ``leftImg8bit``/``gtFine`` folders in Cityscapes' exact layout.

    Args:
        root (str): Dataset root to create.
        splits (dict): Number of images per split, e.g. ``{'train': 4}``.

    Returns:
        str: ``root``.
    """
    rng = np.random.default_rng(seed)
    for split, n in splits.items():
        for i in range(n):
            city = 'aachen' if i % 2 else 'bremen'
            stem = f'{city}_{i:06d}_000019'
            image, label = _scene(rng, h, w)
            img_dir = osp.join(root, 'leftImg8bit', split, city)
            gt_dir = osp.join(root, 'gtFine', split, city)
            _write(osp.join(img_dir, f'{stem}_leftImg8bit.png'), image)
            _write(osp.join(gt_dir, f'{stem}_gtFine_labelTrainIds.png'), label)
    return root


def write_acdc(root: str,
               conditions: Dict[str, int],
               split: str = 'train',
               h: int = 64,
               w: int = 128,
               seed: int = 0) -> str:
    """Write ``rgb_anon``/``gt`` folders in ACDC's exact layout."""
    rng = np.random.default_rng(seed)
    for cond, n in conditions.items():
        for i in range(n):
            seq = f'GOPR{i % 2:04d}'
            stem = f'{seq}_frame_{i:06d}'
            image, label = _scene(rng, h, w)
            _write(
                osp.join(root, 'rgb_anon', cond, split, seq,
                         f'{stem}_rgb_anon.png'), image)
            _write(
                osp.join(root, 'gt', cond, split, seq,
                         f'{stem}_gt_labelTrainIds.png'), label)
    return root


def _write(path: str, array: np.ndarray) -> None:
    import os
    os.makedirs(osp.dirname(path), exist_ok=True)
    assert cv2.imwrite(path, array), path


@pytest.fixture
def cityscapes_root(tmp_path) -> str:
    return write_cityscapes(
        str(tmp_path / 'cityscapes'), {
            'train': 4,
            'val': 2
        })


@pytest.fixture
def acdc_root(tmp_path) -> str:
    return write_acdc(
        str(tmp_path / 'acdc'),
        {c: 2
         for c in ('fog', 'night', 'rain', 'snow')})


@pytest.fixture
def tiny_checkpoint(tmp_path) -> str:
    """A checkpoint of the tiny DeepLabV3+ with random weights."""
    path = str(tmp_path / 'tiny_random.pth')
    torch.save({'state_dict': build_model(TINY_MODEL).state_dict()}, path)
    return path
