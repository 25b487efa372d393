"""The ``WeatherCorruption`` transform: corrupt a loaded image."""
import os.path as osp
import zlib
from typing import Any, Dict

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS

from .corruptions import CORRUPTIONS, SEVERITIES


@TRANSFORMS.register_module()
class WeatherCorruption(BaseTransform):
    """Apply an ImageNet-C-style weather corruption to ``results['img']``.

    The random draws are seeded from ``seed`` and the image's file name
    (CRC-32 of the basename of ``img_path``), so an image gets the same
    corruption in every round, worker and run, and different images get
    different ones. Put it right after ``LoadImageFromFile``. See
    :mod:`mmseg_ecotta.datasets.transforms.corruptions` for the formulas;
    ``frost`` uses a procedural ice texture because ImageNet-C's frost
    photographs are not available.

    Required keys: ``img`` (``uint8`` BGR, as mmcv loads it); ``img_path``
    (optional: without it the seed comes from the pixel bytes).
    Modified keys: ``img``.

    Args:
        corruption (str): One of ``CORRUPTIONS``: 'fog', 'snow', 'frost',
            'brightness', 'contrast', 'darkness' or 'rain'.
        severity (int): 1 (mild) to 5 (strong), as in ImageNet-C.
            Default: 5 (the level CTTA benchmarks use).
        seed (int): Base seed, combined with the file name. Default: 0.
    """

    def __init__(self,
                 corruption: str,
                 severity: int = 5,
                 seed: int = 0) -> None:
        if corruption not in CORRUPTIONS:
            raise ValueError(f'unknown corruption {corruption!r}; valid: '
                             f'{sorted(CORRUPTIONS)}')
        if severity not in SEVERITIES or isinstance(severity, bool):
            raise ValueError(
                f'severity must be one of {list(SEVERITIES)}, got '
                f'{severity!r}')
        self.corruption = corruption
        self.severity = severity
        self.seed = seed

    def image_seed(self, results: Dict[str, Any]) -> int:
        """The seed of this image: ``seed`` plus a hash of its name."""
        path = results.get('img_path')
        if path:
            key = osp.basename(path).encode()
        else:
            key = np.ascontiguousarray(results['img']).tobytes()
        return (self.seed + zlib.crc32(key)) % 2**32

    def transform(self, results: Dict[str, Any]) -> Dict[str, Any]:
        """Corrupt ``results['img']`` in RGB float space, keep BGR uint8."""
        img = results['img']
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise TypeError(
                f'WeatherCorruption needs a uint8 (H, W, 3) BGR image, got '
                f'{img.dtype} {img.shape}; put it right after '
                f'LoadImageFromFile')
        rng = np.random.default_rng(self.image_seed(results))
        rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB).astype(np.float32) / 255
        out = CORRUPTIONS[self.corruption](rgb, self.severity, rng)
        out = np.clip(np.round(out * 255), 0, 255).astype(np.uint8)
        results['img'] = np.ascontiguousarray(
            cv2.cvtColor(out, cv2.COLOR_RGB2BGR))
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(corruption={self.corruption!r}, '
                f'severity={self.severity}, seed={self.seed})')
