"""Weather corruptions in the style of ImageNet-C, in numpy and OpenCV.

Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to Common
Corruptions and Perturbations", ICLR 2019, arXiv 1903.12261. ``fog``,
``snow``, ``frost``, ``brightness`` and ``contrast`` follow the formulas
and severity constants of the reference code (github.com/hendrycks/robustness,
``ImageNet-C/create_c/make_imagenet_c.py``), with two documented
substitutions, because no corruption library is installed here:

* ``snow`` blurs its snow layer with a line kernel instead of ImageMagick's
  ``motion_blur`` (same radius, sigma and angle);
* ``frost`` blends a procedural ice texture instead of ImageNet-C's six
  frost photographs, which are not available; only its blend weights are
  ImageNet-C's.

``darkness`` (low light: exposure cut in linear radiance plus shot and read
noise) and ``rain`` (long thin streaks) are not ImageNet-C corruptions;
they stand in for ACDC's night and rain.

Every function takes an RGB ``float32`` image in [0, 1] of shape
``(H, W, 3)``, a severity in 1..5 and a ``numpy`` generator, and returns
an image of the same shape in [0, 1].
"""
from typing import Callable, Dict, Tuple

import cv2
import numpy as np

Corruption = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]

# Display gamma between 8-bit values and linear radiance (darkness).
GAMMA = 2.2


def plasma_fractal(size: int, wibble_decay: float,
                   rng: np.random.Generator) -> np.ndarray:
    """Diamond-square height map in [0, 1], as ImageNet-C's fog uses.

    Args:
        size (int): Side of the square map, a power of two.
        wibble_decay (float): Roughness decay per scale; smaller values give
            more high-frequency detail.
        rng (np.random.Generator): Random source.

    Returns:
        np.ndarray: ``(size, size)`` float64 map.
    """
    assert size & (size - 1) == 0, f'size {size} is not a power of two'
    grid = np.zeros((size, size))
    step, wibble = size, 100.0

    def wibbled_mean(total: np.ndarray) -> np.ndarray:
        # Reference formula: the mean of four plus a wibble^2-scaled jitter.
        return total / 4 + wibble * rng.uniform(-wibble, wibble, total.shape)

    while step >= 2:
        half = step // 2
        corners = grid[0:size:step, 0:size:step]
        square = corners + np.roll(corners, -1, axis=0)
        square += np.roll(square, -1, axis=1)
        grid[half:size:step, half:size:step] = wibbled_mean(square)
        centres = grid[half:size:step, half:size:step]
        corners = grid[0:size:step, 0:size:step]
        left = (
            centres + np.roll(centres, 1, axis=0) + corners +
            np.roll(corners, -1, axis=1))
        grid[0:size:step, half:size:step] = wibbled_mean(left)
        top = (
            centres + np.roll(centres, 1, axis=1) + corners +
            np.roll(corners, -1, axis=0))
        grid[half:size:step, 0:size:step] = wibbled_mean(top)
        step //= 2
        wibble /= wibble_decay
    grid -= grid.min()
    return grid / grid.max()


def _fractal_like(image: np.ndarray, wibble_decay: float,
                  rng: np.random.Generator) -> np.ndarray:
    """A plasma fractal cropped to the image's height and width."""
    h, w = image.shape[:2]
    size = 1 << int(np.ceil(np.log2(max(h, w, 2))))
    return plasma_fractal(size, wibble_decay, rng)[:h, :w]


def _clipped_zoom(layer: np.ndarray, zoom: float) -> np.ndarray:
    """Zoom the centre of a 2-D map by ``zoom``, keeping its size."""
    h, w = layer.shape
    ch, cw = max(1, int(np.ceil(h / zoom))), max(1, int(np.ceil(w / zoom)))
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = layer[top:top + ch, left:left + cw]
    return cv2.resize(crop, (w, h), interpolation=cv2.INTER_CUBIC)


def _motion_blur(layer: np.ndarray, radius: int, sigma: float,
                 angle: float) -> np.ndarray:
    """One-sided Gaussian blur along ``angle`` degrees (ImageMagick-like).

    Args:
        layer (np.ndarray): ``(H, W)`` float32 map.
        radius (int): Kernel reach in pixels.
        sigma (float): Gaussian width along the line, in pixels.
        angle (float): Direction of the streak in degrees.
    """
    size = 2 * radius + 1
    kernel = np.zeros((size, size), np.float32)
    theta = np.deg2rad(angle)
    for d in range(radius + 1):
        x = int(round(radius + d * np.cos(theta)))
        y = int(round(radius + d * np.sin(theta)))
        kernel[y, x] += np.exp(-d**2 / (2 * sigma**2))
    kernel /= kernel.sum()
    return cv2.filter2D(layer, -1, kernel, borderType=cv2.BORDER_REFLECT)


def _gray(image: np.ndarray) -> np.ndarray:
    """Luma of an RGB image as ``(H, W, 1)``."""
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[..., None]


def fog(image: np.ndarray, severity: int,
        rng: np.random.Generator) -> np.ndarray:
    """ImageNet-C fog: add a plasma fractal, then renormalise."""
    strength, decay = [(1.5, 2.0), (2.0, 2.0), (2.5, 1.7), (2.5, 1.5),
                       (3.0, 1.4)][severity - 1]
    peak = image.max()
    fogged = image + strength * _fractal_like(image, decay, rng)[..., None]
    return np.clip(fogged * peak / (peak + strength), 0, 1)


def snow(image: np.ndarray, severity: int,
         rng: np.random.Generator) -> np.ndarray:
    """ImageNet-C snow: a zoomed, thresholded, motion-blurred flake layer.

    The scene is also whitened towards ``1.5 * gray + 0.5`` (snow cover).
    """
    (mean, std, zoom, threshold, radius, sigma,
     keep) = [(0.1, 0.3, 3, 0.5, 10, 4, 0.8), (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
              (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
              (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
              (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55)][severity - 1]
    h, w = image.shape[:2]
    flakes = rng.normal(mean, std, (h, w)).astype(np.float32)
    flakes = _clipped_zoom(flakes, zoom)
    flakes[flakes < threshold] = 0
    flakes = np.clip(flakes, 0, 1)
    flakes = _motion_blur(flakes, radius, sigma, rng.uniform(-135, -45))
    flakes = flakes[..., None]
    covered = keep * image + (1 - keep) * np.maximum(image,
                                                     _gray(image) * 1.5 + 0.5)
    return np.clip(covered + flakes + np.rot90(flakes, k=2), 0, 1)


def ice_texture(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A procedural frost texture, ``(H, W, 3)`` in [0, 1].

    Stands in for ImageNet-C's frost photographs (not available here):
    a rough fractal base, sharpened into crystalline ridges, plus short
    bright needles, tinted pale blue like frost on glass.
    """
    size = 1 << int(np.ceil(np.log2(max(h, w, 2))))
    base = plasma_fractal(size, 1.3, rng)[:h, :w].astype(np.float32)
    ridges = 1 - np.abs(2 * base - 1)  # bright where the fractal crosses 0.5
    texture = 0.4 * base + 0.6 * ridges**4
    needles = np.zeros((h, w), np.float32)
    for _ in range(max(1, h * w // 400)):
        x0, y0 = rng.uniform(0, w), rng.uniform(0, h)
        length = rng.uniform(3, 0.05 * max(h, w) + 4)
        theta = rng.uniform(0, np.pi)
        x1, y1 = x0 + length * np.cos(theta), y0 + length * np.sin(theta)
        cv2.line(needles, (int(x0), int(y0)), (int(x1), int(y1)),
                 float(rng.uniform(0.3, 1.0)), 1, cv2.LINE_AA)
    texture = np.clip(texture + 0.5 * cv2.GaussianBlur(needles, (3, 3), 0), 0,
                      1)
    tint = np.array([0.85, 0.93, 1.0], np.float32)  # RGB, pale blue
    return texture[..., None] * tint


def frost(image: np.ndarray, severity: int,
          rng: np.random.Generator) -> np.ndarray:
    """ImageNet-C frost blend ``a * image + b * frost`` on an ice texture."""
    keep, frost_weight = [(1.0, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7),
                          (0.6, 0.75)][severity - 1]
    h, w = image.shape[:2]
    return np.clip(keep * image + frost_weight * ice_texture(h, w, rng), 0, 1)


def brightness(image: np.ndarray, severity: int,
               rng: np.random.Generator) -> np.ndarray:
    """ImageNet-C brightness: raise the HSV value channel."""
    shift = [0.1, 0.2, 0.3, 0.4, 0.5][severity - 1]
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
    hsv[..., 2] = np.clip(hsv[..., 2] + shift, 0, 1)
    return np.clip(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB), 0, 1)


def contrast(image: np.ndarray, severity: int,
             rng: np.random.Generator) -> np.ndarray:
    """ImageNet-C contrast: shrink towards the per-channel mean."""
    factor = [0.4, 0.3, 0.2, 0.1, 0.05][severity - 1]
    means = image.mean(axis=(0, 1), keepdims=True)
    return np.clip((image - means) * factor + means, 0, 1)


def darkness(image: np.ndarray, severity: int,
             rng: np.random.Generator) -> np.ndarray:
    """Low light: cut the exposure in linear radiance, add sensor noise.

    The camera is assumed to boost the gain back by half the lost exposure
    (auto-ISO), which amplifies the photon (shot) noise; read noise is
    added on top. Constants are chosen per severity, not from a paper.
    """
    exposure, photons, read_noise = [(0.5, 2000.0, 0.002), (0.3, 800.0, 0.004),
                                     (0.15, 300.0, 0.006), (0.08, 120.0, 0.01),
                                     (0.04, 50.0, 0.015)][severity - 1]
    linear = image**GAMMA * exposure
    # Poisson shot noise for a full-scale signal of `photons` electrons.
    noisy = rng.poisson(linear * photons) / photons
    noisy = noisy + rng.normal(0, read_noise, image.shape)
    gain = np.sqrt(1 / exposure)
    return np.clip(noisy * gain, 0, 1)**(1 / GAMMA)


def rain(image: np.ndarray, severity: int,
         rng: np.random.Generator) -> np.ndarray:
    """Rain streaks: sparse drops smeared into long near-vertical lines.

    Built like ImageNet-C's snow layer (threshold noise, motion blur) but
    with sparser drops, longer streaks and a dimmer, lower-contrast scene
    (overcast sky). Constants are chosen per severity, not from a paper.
    """
    density, length, streak, keep = [(0.002, 10, 0.6, 0.95),
                                     (0.004, 14, 0.7, 0.9),
                                     (0.006, 18, 0.8, 0.85),
                                     (0.009, 22, 0.9, 0.8),
                                     (0.012, 26, 1.0, 0.75)][severity - 1]
    h, w = image.shape[:2]
    drops = (rng.random((h, w)) < density).astype(np.float32)
    angle = 90 + rng.uniform(-15, 15)  # falling down, slightly slanted
    streaks = _motion_blur(drops, length, length / 2, angle)
    streaks = np.clip(streaks * length * streak, 0, 1)[..., None]
    dim = keep * image + (1 - keep) * _gray(image).mean()
    return np.clip(dim * (1 - 0.5 * streaks) + 0.8 * streaks, 0, 1)


CORRUPTIONS: Dict[str, Corruption] = dict(
    fog=fog,
    snow=snow,
    frost=frost,
    brightness=brightness,
    contrast=contrast,
    darkness=darkness,
    rain=rain)
SEVERITIES: Tuple[int, ...] = (1, 2, 3, 4, 5)
