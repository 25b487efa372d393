"""Shared fixtures: tiny models and data folders in the real layouts."""
import os
import os.path as osp
import shlex
from typing import Callable, Dict

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import mmseg_ecotta  # noqa: F401  (shims and registration first)
from mmseg_ecotta import safe_load
from mmseg_ecotta.registry import TTA_METHODS
from mmseg_ecotta.utils import method_defaults

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
# The tools import the installed package; the tools the tests start run
# this checkout's, whatever the environment has installed.
os.environ['PYTHONPATH'] = os.pathsep.join(
    p for p in (REPO, os.environ.get('PYTHONPATH')) if p)
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
SEGFORMER_B0 = osp.join(REPO,
                        'configs/_base_/models/segformer_mit-b0_camvid.py')
# SegFormer-B0 at an eighth of its width, one block a stage: the MiT
# encoder's LayerNorms (patch embedding, both per block, the spatial
# reduction's, one after each stage) and the head's BN layers, built in a
# fraction of a second.
TINY_SEGFORMER = dict(
    backbone=dict(embed_dims=4, num_layers=[1, 1, 1, 1]),
    decode_head=dict(in_channels=[4, 8, 20, 32], channels=16))


def synthetic_config(method: str) -> str:
    """The run config of ``method`` (its folder) on the synthetic stream."""
    model = 'r18-tiny-meta' if method == 'ecotta' else 'r18-tiny'
    return osp.join(
        REPO, 'configs', method, f'{method}_deeplabv3plus_{model}_1xb1-'
        '3rounds_synthetic-weather-128x256.py')


def method_cfg(name: str, **overrides) -> dict:
    """Method ``name``'s shipped config (``configs/_base_/tta/``), overridden.

    Top-level keys are replaced whole (``optimizer=dict(type='SGD', lr=0.1)``
    is that optimizer, not merged into the default one). An unregistered
    name comes back as ``dict(type=name, **overrides)``.
    """
    if name not in TTA_METHODS.module_dict:
        return dict(type=name, **overrides)
    return dict(method_defaults(name), **overrides)


def build_model(config: str, **overrides) -> torch.nn.Module:
    """Build the ``model`` of a config file, with dict overrides merged."""
    init_default_scope('mmseg')
    cfg = Config.fromfile(config)
    cfg.merge_from_dict({f'model.{k}': v for k, v in overrides.items()})
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def build_tiny_segformer(**overrides) -> torch.nn.Module:
    """The :data:`TINY_SEGFORMER`, with more model overrides merged."""
    init_default_scope('mmseg')
    cfg = Config.fromfile(SEGFORMER_B0)
    cfg.merge_from_dict({
        f'model.{k}': v
        for k, v in dict(TINY_SEGFORMER).items()
    })
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


class ShellPayload:
    """Pickles as a shell command that creates ``marker``: a planted file.

    Unpickling it runs ``touch marker`` (``os.system``), as the checkpoint
    of issue 14 did; the marker shows whether any of it ran.
    """

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {shlex.quote(self.marker)}', )


# How torch names ``os.system`` in a pickle (``posix.system`` on Linux).
SHELL_GLOBAL = f'{os.system.__module__}.system'


def assert_refused_before_running(load: Callable[[], object], file: str,
                                  marker: str) -> None:
    """``load()`` raises the clear error and the payload never ran."""
    with pytest.raises(safe_load.UnsafeFileError) as info:
        load()
    message = str(info.value)
    assert repr(file) in message
    assert SHELL_GLOBAL in message
    assert '--unsafe-load' in message and 'unsafe_load = True' in message
    assert not osp.exists(marker)


@pytest.fixture
def unsafe_load(monkeypatch) -> list:
    """Opt in to full unpickling for one test; collects the warnings."""
    warnings = []
    monkeypatch.setattr(safe_load, '_unsafe_load_source', None)
    monkeypatch.setattr(
        safe_load,
        'print_log',
        lambda message, logger=None, level=None: warnings.append(message))
    safe_load.allow_unsafe_load('--unsafe-load')
    return warnings
