"""Smooth value noise, the texture of scenes and weather alike."""
import cv2
import numpy as np


def smooth_noise(rng: np.random.Generator, height: int, width: int,
                 cell: float) -> np.ndarray:
    """Value noise in ``[0, 1]`` with features about ``cell`` px large."""
    gh = max(2, int(np.ceil(height / cell)) + 1)
    gw = max(2, int(np.ceil(width / cell)) + 1)
    grid = rng.random((gh, gw)).astype(np.float32)
    return cv2.resize(
        grid, (width, height), interpolation=cv2.INTER_CUBIC).clip(0.0, 1.0)
