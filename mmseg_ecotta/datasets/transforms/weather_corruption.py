"""The ``WeatherCorruption`` transform: corrupt a loaded image.

Two backends. ``'imagecorruptions'`` (default) takes every corruption it
has from ``imagecorruptions-imaug``, the maintained fork of the ImageNet-C
corruption package (Michaelis et al., arXiv 1907.07484; Hendrycks &
Dietterich, ICLR 2019), with ImageNet-C's real frost photographs: ``fog``,
``snow``, ``frost``, ``brightness``, ``contrast`` and the 14 others of
ImageNet-C. It has no low light and no rain, so ``darkness`` and ``rain``
always come from our own :mod:`.corruptions`. ``'builtin'`` uses only our
numpy/OpenCV re-implementations (:mod:`.corruptions`), for machines
without the library.
"""
import os.path as osp
import zlib
from typing import Any, Dict, Tuple

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS

from .corruptions import CORRUPTIONS, SEVERITIES

BACKENDS: Tuple[str, ...] = ('imagecorruptions', 'builtin')
# Ours in every backend: the corruption library has neither.
OWN_CORRUPTIONS: Tuple[str, ...] = ('darkness', 'rain')


def library_corruptions() -> Tuple[str, ...]:
    """Names ``imagecorruptions`` provides (ImageNet-C's 19).

    Raises:
        ImportError: The library is missing, with the install command.
    """
    try:
        from imagecorruptions import get_corruption_names
    except ImportError as error:
        raise ImportError(
            'WeatherCorruption(backend=\'imagecorruptions\') needs '
            '`pip install imagecorruptions-imaug` (see requirements.txt), '
            'or set backend=\'builtin\'') from error
    return tuple(get_corruption_names('all'))


def library_corrupt(rgb: np.ndarray, corruption: str, severity: int,
                    seed: int) -> np.ndarray:
    """Corrupt an RGB ``uint8`` ``(H, W, 3)`` image with the library.

    The library draws from numpy's global generator; it is seeded with
    ``seed`` for the call and restored afterwards, so the result depends
    only on the image, corruption, severity and seed.
    """
    from imagecorruptions import corrupt
    if min(rgb.shape[:2]) < 32:
        raise ValueError(
            f'imagecorruptions needs images of at least 32x32 pixels, got '
            f'{rgb.shape[0]}x{rgb.shape[1]}; corrupt before resizing down, '
            f'or use backend=\'builtin\'')
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        out = corrupt(rgb, corruption_name=corruption, severity=severity)
    finally:
        np.random.set_state(state)
    out = np.asarray(out)
    assert out.shape == rgb.shape, (out.shape, rgb.shape)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


@TRANSFORMS.register_module()
class WeatherCorruption(BaseTransform):
    """Apply an ImageNet-C-style weather corruption to ``results['img']``.

    The random draws are seeded from ``seed`` and the image's file name
    (CRC-32 of the basename of ``img_path``), so an image gets the same
    corruption in every round, worker and run, and different images get
    different ones. Put it right after ``LoadImageFromFile``. See
    :mod:`mmseg_ecotta.datasets.transforms.corruptions` for the formulas;
    With ``backend='builtin'``, ``frost`` uses a procedural ice texture
    instead of ImageNet-C's frost photographs.

    Required keys: ``img`` (``uint8`` BGR, as mmcv loads it); ``img_path``
    (optional: without it the seed comes from the pixel bytes).
    Modified keys: ``img``.

    Args:
        corruption (str): 'darkness', 'rain', or a corruption of the
            backend: any of ImageNet-C's 19 ('fog', 'snow', 'frost',
            'brightness', 'contrast', ...) with ``'imagecorruptions'``; one
            of ``CORRUPTIONS`` with ``'builtin'``.
        severity (int): 1 (mild) to 5 (strong), as in ImageNet-C.
            Default: 5 (the level CTTA benchmarks use).
        seed (int): Base seed, combined with the file name. Default: 0.
        backend (str): One of ``BACKENDS``. Default: 'imagecorruptions'.
    """

    def __init__(self,
                 corruption: str,
                 severity: int = 5,
                 seed: int = 0,
                 backend: str = 'imagecorruptions') -> None:
        if backend not in BACKENDS:
            raise ValueError(
                f'unknown backend {backend!r}; valid: {list(BACKENDS)}')
        valid = set(CORRUPTIONS)
        if backend == 'imagecorruptions':
            valid = set(library_corruptions()) | set(OWN_CORRUPTIONS)
        if corruption not in valid:
            raise ValueError(f'unknown corruption {corruption!r} for '
                             f'backend {backend!r}; valid: {sorted(valid)}')
        if severity not in SEVERITIES or isinstance(severity, bool):
            raise ValueError(
                f'severity must be one of {list(SEVERITIES)}, got '
                f'{severity!r}')
        self.corruption = corruption
        self.severity = severity
        self.seed = seed
        self.backend = backend
        self.use_library = (
            backend == 'imagecorruptions'
            and corruption not in OWN_CORRUPTIONS)

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
        seed = self.image_seed(results)
        rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        if self.use_library:
            out = library_corrupt(rgb, self.corruption, self.severity, seed)
        else:
            rng = np.random.default_rng(seed)
            out = CORRUPTIONS[self.corruption](rgb.astype(np.float32) / 255,
                                               self.severity, rng)
            out = np.clip(np.round(out * 255), 0, 255).astype(np.uint8)
        results['img'] = np.ascontiguousarray(
            cv2.cvtColor(out, cv2.COLOR_RGB2BGR))
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(corruption={self.corruption!r}, '
                f'severity={self.severity}, seed={self.seed}, '
                f'backend={self.backend!r})')
