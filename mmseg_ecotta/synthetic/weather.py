"""Physics-inspired adverse-weather models (fog, night, rain, snow).

Each model is written once from its physics with fixed, documented
constants; only the per-image random draws (visibility within a physical
range, drop positions, lamp positions, sensor noise) come from the
generator passed in. Nothing is tuned against any adaptation method.

All models work on *linear* radiance: the sRGB-ish input is linearised
with a plain power-law gamma, the physics is applied, and the result is
re-encoded and quantised to ``uint8``. The scene label is deliberately
not an input; surfaces are reasoned about from the depth map only:

* the ground plane is where depth *decreases* going down an image
  column (vertical surfaces have constant depth along a column in the
  scene model, the sky is constant too);
* a pinhole camera with focal length ~ image width is assumed to turn
  metric sizes into pixels (the generator uses the same convention).
"""

from typing import Callable, Dict, Tuple

import cv2
import numpy as np

from .noise import smooth_noise

CONDITIONS: Tuple[str, ...] = ('fog', 'night', 'rain', 'snow')

# Display gamma used to go between 8-bit values and linear radiance.
GAMMA = 2.2

# --- fog (Koschmieder) ---------------------------------------------------
# Meteorological visibility V (m) of dense fog as in ACDC; the extinction
# coefficient follows from the 5 % contrast threshold: beta = 3 / V.
FOG_VISIBILITY_RANGE = (30.0, 70.0)
# Airlight A (linear radiance of the horizon sky): overcast near-white
# grey; fog droplets scatter all wavelengths alike (Mie), so it is grey.
FOG_AIRLIGHT_RANGE = (0.62, 0.78)
# Fog skies are overcast: direct sunlight is attenuated so the scene
# radiance J itself is dimmer than on a clear day.
FOG_ILLUMINATION = 0.75

# --- night -----------------------------------------------------------------
# Ambient night illumination (moon, urban sky glow, distant street
# lighting) relative to daylight *after* the camera's longest exposure
# and widest aperture: ~1 % of the day-time signal reaches the sensor.
NIGHT_AMBIENT = 0.01
# Ego-vehicle headlights: illumination relative to daylight at the
# reference distance, falling off with the inverse square of depth.
HEADLIGHT_ILLUMINATION = 0.04
HEADLIGHT_REF_M = 8.0
# Radiance of the night sky itself (sky glow), relative to daylight
# white; the sky is not lit by the scene illumination above.
NIGHT_SKY_RADIANCE = 0.0015
# Depth from which a pixel counts as sky (the generator uses 1000 m).
SKY_MIN_DEPTH = 900.0
# Sensor full-well capacity in electrons at linear value 1.0 of the day
# exposure; sets the photon (shot) noise level.
FULL_WELL_ELECTRONS = 10000.0
# Read noise of the sensor, electrons RMS (small CMOS at high gain).
READ_NOISE_ELECTRONS = 3.0
# Analogue/digital gain (ISO boost) the camera applies in the dark; it
# amplifies signal and noise alike.
NIGHT_ISO_GAIN = 4.0
# Spectral balance of night illumination after white balance: moonlit
# sky and LED/sodium mix rendered bluish by the camera.
NIGHT_TINT = (0.78, 0.88, 1.15)
# Number of artificial light sources (street lamps, lit windows,
# headlights) per 100k pixels, and their emitted radiance (saturating).
NIGHT_LAMPS_PER_100K_PX = 18.0
LAMP_RADIANCE = 6.0
# Fraction of the lamp radiance scattered into its halo by the air, and
# the surface illuminance near a lamp relative to daylight.
LAMP_HALO_FRACTION = 0.0015
LAMP_ILLUMINATION = 0.01
# Physical radius of a lamp's emitting area (m) and of its scattering
# halo (m) in the slightly hazy night air.
LAMP_RADIUS_M = 0.15
LAMP_HALO_M = 1.0

# --- rain ------------------------------------------------------------------
# Terminal velocity of ~2 mm raindrops (m/s) and the exposure time of a
# dash-cam frame (s): streak length in pixels = f * v * t / z.
RAIN_DROP_SPEED = 8.0
RAIN_EXPOSURE_S = 1.0 / 60.0
# Depth layers of falling drops (m) and the number of streaks per 100k
# pixels in each (heavy rain); nearer layers hold fewer but larger
# streaks.
RAIN_LAYERS_M = (0.7, 1.5, 3.0, 6.0)
RAIN_STREAKS_PER_100K_PX = (25.0, 80.0, 250.0, 700.0)
# Opacity of a streak: a drop only spends part of the exposure on each
# pixel of its path, so a streak is semi-transparent.
RAIN_STREAK_ALPHA = (0.3, 0.25, 0.22, 0.2)
# Radiance of the light a drop refracts towards the camera (the bright
# overcast sky seen through it).
RAIN_DROP_RADIANCE = 0.8
# Wind-driven fall angle range in degrees from vertical.
RAIN_ANGLE_DEG = (-25.0, 25.0)
# Wet ground: water fills pores and lowers diffuse albedo (x0.55) and
# adds a specular film whose Fresnel reflectance grows towards grazing
# angles (far ground), reflecting the sky radiance.
WET_ALBEDO = 0.55
WET_SPECULAR_MAX = 0.35
# Rain veiling: scattering by the drop volume, like a light fog with a
# visibility of a few hundred metres.
RAIN_VISIBILITY_RANGE = (120.0, 250.0)
RAIN_AIRLIGHT = 0.5
# Overcast rain clouds cut the illumination.
RAIN_ILLUMINATION = 0.6
# Water on the windscreen/lens defocuses slightly (Gaussian sigma, px at
# a 256 px wide image; scaled with width).
RAIN_BLUR_SIGMA = 0.8

# --- snow ------------------------------------------------------------------
# Flake depth layers (m), counts per 100k px and physical flake diameter
# (m); snow falls at ~1 m/s so flakes show little motion blur but near
# flakes are out of focus (defocus blur grows as 1/z).
SNOW_LAYERS_M = (0.6, 1.5, 4.0, 10.0)
SNOW_FLAKES_PER_100K_PX = (40.0, 150.0, 500.0, 1500.0)
SNOW_FLAKE_DIAMETER_M = 0.01
SNOW_FLAKE_ALPHA = (0.6, 0.75, 0.85, 0.8)
# Radiance of snow (albedo ~0.8-0.9 under diffuse overcast light).
SNOW_RADIANCE = 0.85
# Fraction of the upward-facing ground covered by snow (patchy, with
# tyre tracks left free by the noise pattern).
SNOW_COVER_RANGE = (0.45, 0.8)
# Snowfall veiling: visibility of a moderate snowfall, bright airlight
# because of multiple scattering on snow.
SNOW_VISIBILITY_RANGE = (90.0, 200.0)
SNOW_AIRLIGHT = 0.85
# Overcast snow sky, partly compensated by the bright snow cover.
SNOW_ILLUMINATION = 0.85

# Focal length in units of image width (pinhole assumption, see module
# docstring).
FOCAL_PER_WIDTH = 1.0


def _to_linear(image: np.ndarray) -> np.ndarray:
    """uint8 RGB -> float32 linear radiance in ``[0, 1]``."""
    return (image.astype(np.float32) / 255.0)**GAMMA


def _to_uint8(linear: np.ndarray) -> np.ndarray:
    """Linear radiance -> gamma-encoded, quantised uint8 RGB."""
    encoded = np.clip(linear, 0.0, 1.0)**(1.0 / GAMMA)
    return np.round(encoded * 255.0).astype(np.uint8)


def _koschmieder(linear: np.ndarray, depth: np.ndarray, visibility: float,
                 airlight: float) -> np.ndarray:
    """Atmospheric scattering ``I = J t + A (1 - t)``, ``t = e^{-bd}``.

    Args:
        linear: Scene radiance J, ``(H, W, 3)``.
        depth: Distance in metres, ``(H, W)``.
        visibility: Meteorological visibility in metres (beta = 3 / V).
        airlight: Radiance A of the atmosphere at infinity.

    Returns:
        Observed radiance.
    """
    beta = 3.0 / visibility
    t = np.exp(-beta * depth.astype(np.float32))[..., None]
    return linear * t + airlight * (1.0 - t)


def ground_mask(depth: np.ndarray) -> np.ndarray:
    """Upward-facing ground, found from depth only.

    On the ground plane depth shrinks going down an image column
    (``z ~ h f / (row - horizon)``); on vertical surfaces it is constant.

    Args:
        depth: ``(H, W)`` depth in metres.

    Returns:
        Float ``(H, W)`` mask in ``[0, 1]``.
    """
    d = depth.astype(np.float32)
    below = np.zeros_like(d)
    below[:-1] = d[:-1] - d[1:]
    below[-1] = below[-2]
    above = np.zeros_like(d)
    above[1:] = d[:-1] - d[1:]
    above[0] = above[1]
    # Strictly decreasing on both sides rejects occlusion edges (a
    # single jump at the top of an object or the skyline).
    tol = 1e-4 * d
    ground = (below > tol) & (above > tol) & (d < SKY_MIN_DEPTH)
    return ground.astype(np.float32)


def _count(density_per_100k: float, height: int, width: int,
           rng: np.random.Generator) -> int:
    """Poisson number of particles for an area density."""
    return int(rng.poisson(density_per_100k * height * width / 1e5))


def fog(image: np.ndarray, depth: np.ndarray,
        rng: np.random.Generator) -> np.ndarray:
    """Dense homogeneous fog by Koschmieder's law."""
    lin = _to_linear(image) * FOG_ILLUMINATION
    vis = rng.uniform(*FOG_VISIBILITY_RANGE)
    air = rng.uniform(*FOG_AIRLIGHT_RANGE)
    return _to_uint8(_koschmieder(lin, depth, vis, air))


def _glow(height: int, width: int, cx: float, cy: float, r_core: float,
          r_halo: float) -> Tuple[np.ndarray, np.ndarray]:
    """Emitting disc and Lorentzian scattering halo (unit peaks)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5
    d2 = (xx - cx)**2 + (yy - cy)**2
    core = np.exp(-d2 / max(r_core, 0.5)**2)
    halo = 1.0 / (1.0 + d2 / max(r_halo, 1.0)**2)
    return core, halo


def night(image: np.ndarray, depth: np.ndarray,
          rng: np.random.Generator) -> np.ndarray:
    """Low light: dim exposure, artificial lights and sensor noise."""
    h, w = depth.shape
    focal = FOCAL_PER_WIDTH * w
    albedo = _to_linear(image)
    # Illumination: ambient plus the ego headlights (inverse square
    # law, capped close to the car); the sky only shows its own glow.
    z = np.maximum(depth.astype(np.float32), 1e-3)
    head = HEADLIGHT_ILLUMINATION * np.minimum(1.0, (HEADLIGHT_REF_M / z)**2)
    lin = albedo * (NIGHT_AMBIENT + head)[..., None]
    sky = (depth >= SKY_MIN_DEPTH)[..., None]
    lin = np.where(
        sky, NIGHT_SKY_RADIANCE * albedo /
        max(float(albedo[sky[..., 0]].mean()) if sky.any() else 1.0, 1e-3),
        lin)
    lin = lin * np.asarray(NIGHT_TINT, np.float32)
    # Light sources sit on vertical structures (lamp heads, windows,
    # vehicle lamps) at moderate range; never on the sky or the ground.
    ground = ground_mask(depth) > 0
    rows = np.arange(h)[:, None]
    cand = (~ground) & (depth > 8.0) & (depth < 120.0) & (rows < 0.75 * h)
    ys, xs = np.nonzero(cand)
    emission = np.zeros((h, w, 3), np.float32)
    pool = np.zeros((h, w, 3), np.float32)
    n = _count(NIGHT_LAMPS_PER_100K_PX, h, w, rng)
    if len(ys) and n:
        idx = rng.choice(len(ys), size=min(n, len(ys)), replace=False)
        for i in idx:
            z = float(depth[ys[i], xs[i]])
            # Apparent size of the emitter and its halo scale as 1/z.
            core, halo = _glow(h, w, xs[i] + 0.5, ys[i] + 0.5,
                               focal * LAMP_RADIUS_M / z,
                               focal * LAMP_HALO_M / z)
            # Sodium (orange) or LED (cool white) lamps.
            col = (
                np.array(
                    (1.0, 0.62,
                     0.3), np.float32) if rng.random() < 0.6 else np.array(
                         (0.9, 0.95, 1.0), np.float32))
            # Emitter (saturating) plus the light scattered in the air
            # around it (halo, a few percent of the source radiance).
            emission += LAMP_RADIANCE * (
                core + LAMP_HALO_FRACTION * halo)[..., None] * col
            # Illumination of the surfaces around the lamp.
            pool += LAMP_ILLUMINATION * halo[..., None] * col
    # Lamps light up nearby surfaces in proportion to their albedo.
    lit = lin + albedo * pool + emission
    # Sensor: photons -> electrons (Poisson shot noise), + read noise,
    # then gain, gamma and quantisation.
    electrons = lit * FULL_WELL_ELECTRONS
    shot = rng.poisson(np.clip(electrons, 0, None)).astype(np.float32)
    read = rng.normal(0.0, READ_NOISE_ELECTRONS, shot.shape)
    signal = (shot + read) / FULL_WELL_ELECTRONS * NIGHT_ISO_GAIN
    return _to_uint8(signal)


def _streak_layer(h: int, w: int, n: int, length: float, angle: float,
                  thickness: int, rng: np.random.Generator) -> np.ndarray:
    """Float mask of ``n`` motion-blurred streaks of a given length."""
    layer = np.zeros((h, w), np.float32)
    dx = np.sin(angle) * length
    dy = np.cos(angle) * length
    x0 = rng.uniform(-abs(dx), w + abs(dx), n)
    y0 = rng.uniform(-length, h, n)
    for xa, ya in zip(x0, y0):
        cv2.line(
            layer, (int(xa), int(ya)), (int(xa + dx), int(ya + dy)),
            1.0,
            thickness,
            lineType=cv2.LINE_AA)
    return layer


def rain(image: np.ndarray, depth: np.ndarray,
         rng: np.random.Generator) -> np.ndarray:
    """Heavy rain: wet ground, veiling, streaks and a slight blur."""
    h, w = depth.shape
    focal = FOCAL_PER_WIDTH * w
    lin = _to_linear(image) * RAIN_ILLUMINATION
    ground = ground_mask(depth)[..., None]
    # Wet ground: darker diffuse albedo plus a Fresnel-like specular
    # term reflecting the (overcast) sky; grazing angle grows with
    # depth, so reflectance rises with distance.
    grazing = 1.0 - np.exp(-depth / 25.0)[..., None]
    spec = WET_SPECULAR_MAX * grazing * RAIN_AIRLIGHT
    # Blurred vertical smear of the scene mimics glossy reflections of
    # bright objects standing on the wet road.
    smear = cv2.GaussianBlur(lin, (0, 0), sigmaX=0.5, sigmaY=3.0)
    wet = lin * WET_ALBEDO + spec + 0.15 * smear * grazing
    lin = lin * (1 - ground) + wet * ground
    lin = _koschmieder(lin, depth, rng.uniform(*RAIN_VISIBILITY_RANGE),
                       RAIN_AIRLIGHT)
    angle = np.deg2rad(rng.uniform(*RAIN_ANGLE_DEG))
    scale = w / 256.0
    for z, dens, alpha in zip(RAIN_LAYERS_M, RAIN_STREAKS_PER_100K_PX,
                              RAIN_STREAK_ALPHA):
        length = focal * RAIN_DROP_SPEED * RAIN_EXPOSURE_S / z
        n = _count(dens, h, w, rng)
        thick = max(1, int(round(1.2 * scale / z)))
        layer = _streak_layer(h, w, n, length, angle, thick, rng)
        if z < 1.0:
            # Near drops are out of focus.
            layer = cv2.GaussianBlur(layer, (0, 0), 1.2 * scale)
        a = (alpha * layer.clip(0, 1))[..., None]
        lin = lin * (1 - a) + RAIN_DROP_RADIANCE * a
    lin = cv2.GaussianBlur(lin, (0, 0), RAIN_BLUR_SIGMA * scale)
    return _to_uint8(lin)


def snow(image: np.ndarray, depth: np.ndarray,
         rng: np.random.Generator) -> np.ndarray:
    """Snowfall: snow-covered ground, bright veil and falling flakes."""
    h, w = depth.shape
    focal = FOCAL_PER_WIDTH * w
    lin = _to_linear(image) * SNOW_ILLUMINATION
    # Snow settles on upward-facing surfaces: patchy cover of the
    # ground plane (patches scale with distance through the noise
    # being defined in image space, good enough at this resolution).
    ground = ground_mask(depth)
    cover_frac = rng.uniform(*SNOW_COVER_RANGE)
    patt = smooth_noise(rng, h, w, max(4.0, w / 10))
    patt = 0.8 * patt + 0.2 * smooth_noise(rng, h, w, 3.0)
    thr = np.quantile(patt, 1.0 - cover_frac)
    cover = ((patt - thr) / 0.25 + 0.5).clip(0, 1) * ground
    # Cover mixes the surface towards the snow radiance (bluish white
    # under overcast sky light).
    snow_rgb = np.array((0.85, 0.88, 0.95), np.float32) * SNOW_RADIANCE
    lin = lin * (1 - cover[..., None]) + snow_rgb * cover[..., None]
    lin = _koschmieder(lin, depth, rng.uniform(*SNOW_VISIBILITY_RANGE),
                       SNOW_AIRLIGHT)
    scale = w / 256.0
    for z, dens, alpha in zip(SNOW_LAYERS_M, SNOW_FLAKES_PER_100K_PX,
                              SNOW_FLAKE_ALPHA):
        n = _count(dens, h, w, rng)
        radius = 0.5 * focal * SNOW_FLAKE_DIAMETER_M / z
        layer = np.zeros((h, w), np.float32)
        xs = rng.uniform(0, w, n)
        ys = rng.uniform(0, h, n)
        rs = radius * rng.uniform(0.6, 1.4, n)
        for x, y, r in zip(xs, ys, rs):
            cv2.circle(
                layer, (int(x), int(y)),
                max(0, int(round(r))),
                1.0,
                -1,
                lineType=cv2.LINE_AA)
        if z < 2.0:
            # Defocus blur of near flakes (circle of confusion ~ 1/z).
            layer = cv2.GaussianBlur(layer, (0, 0), 1.5 * scale / z)
            layer = layer / max(float(layer.max()), 1e-6)
        a = (alpha * layer.clip(0, 1))[..., None]
        lin = lin * (1 - a) + SNOW_RADIANCE * a
    return _to_uint8(lin)


_MODELS: Dict[str, Callable[[np.ndarray, np.ndarray, np.random.Generator],
                            np.ndarray]] = {
                                'fog': fog,
                                'night': night,
                                'rain': rain,
                                'snow': snow
                            }


def apply_weather(condition: str, image: np.ndarray, depth: np.ndarray,
                  rng: np.random.Generator) -> np.ndarray:
    """Render an adverse condition on top of a clear image.

    Args:
        condition: One of :data:`CONDITIONS`.
        image: Clear ``uint8`` RGB image, ``(H, W, 3)``.
        depth: Metric depth ``(H, W)`` of the same view.
        rng: Random generator for the per-image draws.

    Returns:
        The degraded ``uint8`` RGB image of the same shape.

    Raises:
        ValueError: If ``condition`` is unknown or shapes mismatch.
    """
    if condition not in _MODELS:
        raise ValueError(f'unknown weather condition {condition!r}; '
                         f'valid conditions are {CONDITIONS}')
    if image.ndim != 3 or image.shape[:2] != depth.shape:
        raise ValueError(f'image {image.shape} and depth {depth.shape} '
                         'do not match')
    return _MODELS[condition](image, depth, rng)
