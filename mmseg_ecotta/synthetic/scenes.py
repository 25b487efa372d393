"""Procedural street scenes with pixel-exact labels and metric depth.

A scene is rendered from a tiny pinhole-camera model: the camera sits
``CAMERA_HEIGHT`` metres above a flat ground plane and looks along the
street. Every primitive (ground region, facade segment, tree, car, ...)
is projected with that camera, so the depth map and the image come from
the same geometry. Each primitive is rasterised once into a boolean mask
and that single mask writes the colour, the label and the depth, which
keeps the labels pixel-exact with the image (no antialiasing anywhere).

Occlusion uses the painter's algorithm (objects are drawn far to near)
backed by a depth test, so a nearer object always overwrites label *and*
depth of whatever lies behind it.

Only numpy and OpenCV are used; nothing here imports mmseg/mmengine.
"""

from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from .noise import smooth_noise

# Cityscapes trainIds (19 evaluation classes, 255 = ignore).
CLASSES: Tuple[str,
               ...] = ('road', 'sidewalk', 'building', 'wall', 'fence', 'pole',
                       'traffic light', 'traffic sign', 'vegetation',
                       'terrain', 'sky', 'person', 'rider', 'car', 'truck',
                       'bus', 'train', 'motorcycle', 'bicycle')
(ROAD, SIDEWALK, BUILDING, WALL, FENCE, POLE, LIGHT, SIGN, VEGETATION, TERRAIN,
 SKY, PERSON, RIDER, CAR, TRUCK, BUS, TRAIN, MOTORCYCLE, BICYCLE) = range(19)
IGNORE_INDEX = 255

# Camera height above the road in metres (typical car-mounted camera).
CAMERA_HEIGHT = 1.5
# Depth assigned to sky pixels, metres; "at infinity" for the weather
# models (exp(-beta * 1000) is ~0 for any fog/haze we simulate).
SKY_DEPTH = 1000.0
# Ground depth is clipped here so that rows right below the horizon do
# not get absurd values; still far beyond any simulated visibility.
MAX_GROUND_DEPTH = 500.0

ColorLike = Union[Sequence[float], np.ndarray]


@dataclass
class Scene:
    """A rendered scene.

    Attributes:
        image: ``uint8`` array of shape ``(H, W, 3)`` in RGB order.
        label: ``uint8`` array of shape ``(H, W)`` with Cityscapes
            trainIds (0..18), 255 for ignore.
        depth: ``float32`` array of shape ``(H, W)``: metric depth
            (distance along the optical axis) in metres.
        instances: One dict per placed object (``label``, ``depth`` and
            ``bbox`` as ``(x0, y0, x1, y1)``), useful for diagnostics.
    """

    image: np.ndarray
    label: np.ndarray
    depth: np.ndarray
    instances: List[dict] = field(default_factory=list)


class Canvas:
    """Float image plus label and depth buffers with a depth test.

    Args:
        height: Image height in pixels.
        width: Image width in pixels.
    """

    def __init__(self, height: int, width: int) -> None:
        self.height = height
        self.width = width
        self.image = np.zeros((height, width, 3), np.float32)
        self.label = np.full((height, width), IGNORE_INDEX, np.uint8)
        self.depth = np.full((height, width), np.inf, np.float32)

    def paint(self,
              mask: np.ndarray,
              label: int,
              depth: Union[float, np.ndarray],
              color: ColorLike,
              texture: Optional[np.ndarray] = None) -> np.ndarray:
        """Write one primitive where it is not behind existing content.

        Ties (``depth == current``) overwrite, so parts of one object
        drawn later (a window on a car body) win over earlier parts.

        Args:
            mask: Boolean ``(H, W)`` coverage of the primitive.
            label: trainId written to the label buffer.
            depth: Scalar or ``(H, W)`` depth of the primitive.
            color: RGB in ``[0, 1]``: a 3-vector or an ``(H, W, 3)``
                array.
            texture: Optional ``(H, W)`` multiplicative shading.

        Returns:
            The boolean mask of pixels actually written.
        """
        depth_map = np.broadcast_to(np.asarray(depth, np.float32), mask.shape)
        win = mask & (depth_map <= self.depth)
        if not win.any():
            return win
        color = np.asarray(color, np.float32)
        pix = color[win] if color.ndim == 3 else np.broadcast_to(
            color, (int(win.sum()), 3))
        if texture is not None:
            pix = pix * texture[win][:, None]
        self.image[win] = pix
        self.label[win] = label
        self.depth[win] = depth_map[win]
        return win


@dataclass
class _Camera:
    """Pinhole camera looking along the street (+Z), Y up, X right."""

    focal: float
    horizon: float
    vp_x: float

    def project(self, x: float, y: float, z: float) -> Tuple[float, float]:
        """Project world point (metres) to pixel ``(col, row)``."""
        col = self.vp_x + self.focal * x / z
        row = self.horizon + self.focal * (CAMERA_HEIGHT - y) / z
        return col, row

    def scale(self, z: float) -> float:
        """Pixels per metre for a fronto-parallel object at depth z."""
        return self.focal / z


def _poly_mask(shape: Tuple[int, int], pts: np.ndarray) -> np.ndarray:
    """Aliased (8-connected) polygon mask with 1/16 px vertex precision."""
    mask = np.zeros(shape, np.uint8)
    ipts = np.round(np.asarray(pts, np.float64) * 16).astype(np.int32)
    cv2.fillPoly(mask, [ipts], 1, lineType=cv2.LINE_8, shift=4)
    return mask.astype(bool)


def _rect_mask(shape: Tuple[int, int], x0: float, y0: float, x1: float,
               y1: float) -> np.ndarray:
    """Axis-aligned rectangle, at least one pixel wide and tall."""
    if x1 - x0 < 1.0:
        cx = 0.5 * (x0 + x1)
        x0, x1 = cx - 0.5, cx + 0.5
    if y1 - y0 < 1.0:
        cy = 0.5 * (y0 + y1)
        y0, y1 = cy - 0.5, cy + 0.5
    mask = np.zeros(shape, bool)
    c0, c1 = int(np.floor(x0 + 0.5)), int(np.floor(x1 + 0.5))
    r0, r1 = int(np.floor(y0 + 0.5)), int(np.floor(y1 + 0.5))
    c0, r0 = max(c0, 0), max(r0, 0)
    mask[r0:max(r1, r0), c0:max(c1, c0)] = True
    return mask


def _ellipse_mask(shape: Tuple[int, int], cx: float, cy: float, rx: float,
                  ry: float) -> np.ndarray:
    """Filled ellipse by an exact inside test on pixel centres."""
    rx, ry = max(rx, 0.5), max(ry, 0.5)
    h, w = shape
    r0, r1 = max(int(cy - ry) - 1, 0), min(int(cy + ry) + 2, h)
    c0, c1 = max(int(cx - rx) - 1, 0), min(int(cx + rx) + 2, w)
    mask = np.zeros(shape, bool)
    if r0 >= r1 or c0 >= c1:
        return mask
    yy, xx = np.mgrid[r0:r1, c0:c1].astype(np.float32) + 0.5
    mask[r0:r1, c0:c1] = ((xx - cx) / rx)**2 + ((yy - cy) / ry)**2 <= 1.0
    return mask


def _ring_mask(shape: Tuple[int, int], cx: float, cy: float, r: float,
               thick: float) -> np.ndarray:
    """Annulus (a wheel tyre), filled if it would be thinner than 1 px."""
    outer = _ellipse_mask(shape, cx, cy, r, r)
    if r - thick < 1.0:
        return outer
    return outer & ~_ellipse_mask(shape, cx, cy, r - thick, r - thick)


def _jitter(rng: np.random.Generator,
            color: ColorLike,
            amount: float = 0.08) -> np.ndarray:
    """Randomly perturb an RGB colour (per-instance variation)."""
    c = np.asarray(color, np.float32)
    c = c * rng.uniform(1 - amount, 1 + amount) + rng.normal(0, amount / 2, 3)
    return c.clip(0.0, 1.0).astype(np.float32)


# Base palettes (RGB, 0..1), jittered per instance.
_FACADE_COLORS = ((0.55, 0.50, 0.45), (0.70, 0.62, 0.52), (0.45, 0.42, 0.42),
                  (0.65, 0.40, 0.32), (0.78, 0.75, 0.68), (0.52, 0.55, 0.58),
                  (0.60, 0.55, 0.35))
_CAR_COLORS = ((0.75, 0.75, 0.78), (0.15, 0.15, 0.17), (0.55, 0.08, 0.08),
               (0.10, 0.18, 0.45), (0.85, 0.85, 0.82), (0.35, 0.38, 0.40),
               (0.20, 0.35, 0.20))
_CLOTH_COLORS = ((0.15, 0.15, 0.20), (0.50, 0.10, 0.10), (0.15, 0.25, 0.45),
                 (0.60, 0.55, 0.45), (0.25, 0.40, 0.25), (0.80, 0.80, 0.80))
_SKIN_COLORS = ((0.85, 0.65, 0.52), (0.60, 0.42, 0.30), (0.40, 0.27, 0.20))


class _SceneRenderer:
    """Holds the camera, layout and lighting for one scene."""

    def __init__(self, rng: np.random.Generator, height: int,
                 width: int) -> None:
        self.rng = rng
        self.h, self.w = height, width
        self.shape = (height, width)
        # Focal length ~ image width: about a 53 degree horizontal field
        # of view, similar to the Cityscapes/ACDC cameras.
        self.cam = _Camera(
            focal=width * rng.uniform(0.9, 1.1),
            horizon=height * rng.uniform(0.36, 0.5),
            vp_x=width * rng.uniform(0.38, 0.62))
        self.canvas = Canvas(height, width)
        self.instances: List[dict] = []
        rows = np.arange(height, dtype=np.float32) + 0.5
        cols = np.arange(width, dtype=np.float32) + 0.5
        self.rows, self.cols = rows, cols
        # Lighting: a global gain (exposure / cloud cover) and a sun
        # azimuth that lights one street side and shades the other.
        self.gain = rng.uniform(0.75, 1.2)
        self.sun_side = rng.uniform(-1.0, 1.0)
        self.warmth = rng.uniform(-0.05, 0.08)
        # Street layout in metres (X = lateral offset from the camera).
        self.road_c = rng.uniform(-1.5, 1.5)
        self.road_hw = rng.uniform(3.5, 7.0)
        self.walk_w = (rng.uniform(1.8, 4.0), rng.uniform(1.8, 4.0))
        self.grass_w = tuple(
            rng.uniform(1.5, 5.0) if rng.random() < 0.55 else 0.0
            for _ in range(2))
        self.z_end = rng.uniform(70.0, 180.0)

    # -- geometry helpers -------------------------------------------------
    def side_x(self, side: int, offset: float) -> float:
        """Lateral X of a line ``offset`` m beyond the kerb of a side.

        Args:
            side: -1 for the left side, +1 for the right side.
            offset: Distance beyond the kerb in metres (0 = kerb).
        """
        return self.road_c + side * (self.road_hw + offset)

    def facade_x(self, side: int) -> float:
        """Lateral X of the building facades of one side."""
        i = 0 if side < 0 else 1
        return self.side_x(side, self.walk_w[i] + self.grass_w[i])

    def shade(self, normal_x: float) -> float:
        """Lambert-like factor for a vertical surface facing +-X or -Z."""
        return 0.8 + 0.25 * normal_x * self.sun_side

    def tint(self, color: ColorLike) -> np.ndarray:
        """Apply the scene's colour temperature (warm/cool light)."""
        c = np.asarray(color, np.float32)
        return (c * np.array([1 + self.warmth, 1.0, 1 - self.warmth],
                             np.float32)).clip(0, 1)

    def add_instance(self, label: int, depth: float,
                     masks: Sequence[np.ndarray]) -> None:
        """Record a placed object (its visible bounding box)."""
        union = np.zeros(self.shape, bool)
        for m in masks:
            union |= m
        if not union.any():
            return
        ys, xs = np.nonzero(union)
        self.instances.append(
            dict(
                label=label,
                depth=float(depth),
                bbox=(int(xs.min()), int(ys.min()), int(xs.max()) + 1,
                      int(ys.max()) + 1)))

    # -- stuff ----------------------------------------------------------
    def draw_sky(self) -> None:
        """Vertical blue gradient with soft clouds, at SKY_DEPTH."""
        rng = self.rng
        top = np.array([
            rng.uniform(0.25, 0.45),
            rng.uniform(0.45, 0.6),
            rng.uniform(0.75, 0.95)
        ], np.float32)
        low = np.array([0.78, 0.83, 0.9], np.float32) * rng.uniform(0.9, 1.05)
        t = (self.rows / max(self.cam.horizon, 1.0)).clip(0, 1)[:, None]
        grad = top[None] * (1 - t) + low[None] * t
        img = np.repeat(grad[:, None, :], self.w, axis=1)
        cloud = smooth_noise(rng, self.h, self.w, self.w / 6)
        cover = rng.uniform(0.3, 0.8)
        cmask = ((cloud - cover) / (1 - cover)).clip(0, 1)[..., None]
        img = img * (1 - cmask) + 0.92 * cmask
        self.canvas.paint(
            np.ones(self.shape, bool), SKY, SKY_DEPTH, self.tint(img))

    def draw_ground(self) -> None:
        """Road, sidewalks and grass from the ground-plane geometry."""
        cam, rng = self.cam, self.rng
        dr = self.rows - cam.horizon
        below = dr > 0
        z_row = np.where(below,
                         CAMERA_HEIGHT * cam.focal / np.maximum(dr, 1e-3),
                         MAX_GROUND_DEPTH)
        z_row = np.minimum(z_row, MAX_GROUND_DEPTH).astype(np.float32)
        z = np.repeat(z_row[:, None], self.w, axis=1)
        x = (self.cols[None, :] - cam.vp_x) * z / cam.focal
        ground = np.repeat(below[:, None], self.w, axis=1)
        rel = x - self.road_c
        road = ground & (np.abs(rel) <= self.road_hw)
        left = ground & (rel < -self.road_hw)
        right = ground & (rel > self.road_hw)
        walk = (left & (rel >= -self.road_hw - self.walk_w[0])) | (
            right & (rel <= self.road_hw + self.walk_w[1]))
        # Beyond the sidewalk: grass strip where the layout has one,
        # otherwise the pavement continues up to the facades.
        outer = (left | right) & ~walk
        grass_l = left & outer & (self.grass_w[0] > 0)
        grass_r = right & outer & (self.grass_w[1] > 0)
        grass = grass_l | grass_r
        walk = walk | (outer & ~grass)
        fine = smooth_noise(rng, self.h, self.w, 2.0)
        coarse = smooth_noise(rng, self.h, self.w, self.w / 8)
        # Road: dark asphalt with lane markings (labelled road, as in
        # Cityscapes) and coarse patches of repairs / tyre wear.
        asphalt = self.tint(
            np.array((0.33, 0.33, 0.35), np.float32) * rng.uniform(0.8, 1.2))
        tex = 0.85 + 0.2 * coarse + 0.12 * (fine - 0.5)
        road_img = np.broadcast_to(asphalt, (self.h, self.w, 3)).copy()
        dash = (np.mod(z + rng.uniform(0, 9), 9.0) < 4.0)
        for lane_x in (0.0, -self.road_hw + 0.3, self.road_hw - 0.3):
            line = np.abs(rel - lane_x) < 0.08 + 0.001 * z
            if lane_x == 0.0:
                line &= dash
            road_img[line & road] = 0.85
        self.canvas.paint(road, ROAD, z, road_img, tex)
        # Sidewalk: lighter paving with a tile grid in world coordinates.
        paving = self.tint(_jitter(rng, (0.58, 0.55, 0.52), 0.1))
        tile = rng.uniform(0.5, 1.2)
        grid = (np.mod(z, tile) < 0.06 * tile) | (
            np.mod(x, tile) < 0.06 * tile)
        tex_w = (0.9 + 0.15 * coarse + 0.1 *
                 (fine - 0.5)) * np.where(grid, 0.8, 1.0)
        self.canvas.paint(walk, SIDEWALK, z, paving, tex_w)
        # Kerb: a thin bright band at the road edge (still sidewalk).
        kerb = walk & (np.abs(np.abs(rel) - self.road_hw) < 0.15)
        self.canvas.paint(kerb, SIDEWALK, z, paving * 1.15)
        # Grass: green-brown noise.
        grass_c = self.tint(
            _jitter(rng, (0.35, 0.48, 0.2) if rng.random() < 0.7 else
                    (0.5, 0.48, 0.3), 0.1))
        tex_g = 0.75 + 0.35 * coarse + 0.3 * (fine - 0.5)
        self.canvas.paint(grass, TERRAIN, z, grass_c, tex_g)

    def _facade_columns(self, side: int) -> np.ndarray:
        """Depth of the facade plane of one side per image column."""
        xf = self.facade_x(side)
        dc = self.cols - self.cam.vp_x
        with np.errstate(divide='ignore', invalid='ignore'):
            z = self.cam.focal * xf / dc
        valid = (np.sign(dc) == np.sign(xf)) & np.isfinite(z) & (z > 0.5)
        return np.where(valid, z, np.nan).astype(np.float32)

    def _plane_region(self, z_col: np.ndarray, z0: float, z1: float, y0: float,
                      y1: float) -> Tuple[np.ndarray, np.ndarray]:
        """Mask and per-pixel height of a vertical plane patch.

        Args:
            z_col: Per-column depth of the plane (nan = not visible).
            z0: Near end along the street, metres.
            z1: Far end along the street, metres.
            y0: Bottom height above ground, metres.
            y1: Top height above ground, metres.

        Returns:
            Boolean mask and the world height ``y`` of each pixel.
        """
        cam = self.cam
        zc = np.nan_to_num(z_col, nan=-1.0)
        cols_ok = (zc >= z0) & (zc < z1)
        zsafe = np.where(cols_ok, zc, 1.0)
        y = CAMERA_HEIGHT - (self.rows[:, None] -
                             cam.horizon) * zsafe[None, :] / cam.focal
        mask = cols_ok[None, :] & (y >= y0) & (y < y1)
        return mask, y

    def draw_side(self, side: int) -> None:
        """Facades, walls/fences, hedges and trees of one street side."""
        rng = self.rng
        z_col = self._facade_columns(side)
        depth = np.repeat(
            np.nan_to_num(z_col, nan=np.inf)[None, :], self.h, axis=0)
        z = rng.uniform(0.5, 6.0)
        normal = -float(side)  # Facades face the street.
        light = self.shade(normal)
        while z < self.z_end:
            seg = rng.uniform(8.0, 30.0)
            z1 = min(z + seg, self.z_end)
            if rng.random() < 0.18:
                # Gap between buildings: a hedge/tree line behind it.
                top = rng.uniform(2.0, 7.0)
                mask, y = self._plane_region(z_col, z, z1, 0.0, top)
                rag = smooth_noise(rng, self.h, self.w, 3.0)
                mask &= y < top * (0.7 + 0.3 * rag)
                leaf = self.tint(_jitter(rng, (0.2, 0.35, 0.12), 0.15))
                tex = 0.6 + 0.7 * smooth_noise(rng, self.h, self.w, 1.5)
                self.canvas.paint(mask, VEGETATION, depth, leaf * light, tex)
            else:
                self._building(z_col, depth, z, z1, light)
            z = z1
        # Low wall or fence along the outer sidewalk edge.
        if rng.random() < 0.5:
            i = 0 if side < 0 else 1
            xw = self.side_x(side, self.walk_w[i])
            zz = self._plane_depth(xw)
            za = rng.uniform(2.0, 15.0)
            zb = za + rng.uniform(10.0, 40.0)
            is_fence = rng.random() < 0.5
            top = rng.uniform(1.0, 2.0)
            mask, y = self._plane_region(zz, za, zb, 0.0, top)
            dep = np.repeat(
                np.nan_to_num(zz, nan=np.inf)[None, :], self.h, axis=0)
            if is_fence:
                # Fence: bars every ~12 cm seen in perspective.
                finite = np.where(np.isfinite(dep), dep, 0.0)
                bars = np.mod(finite, 0.25) < 0.08
                tex = np.where(bars | (np.abs(y - top * 0.9) < 0.05), 1.0,
                               0.55)
                col = self.tint(_jitter(rng, (0.45, 0.45, 0.42), 0.2))
                self.canvas.paint(mask, FENCE, dep, col * light, tex)
            else:
                col = self.tint(_jitter(rng, (0.62, 0.58, 0.52), 0.15))
                tex = 0.85 + 0.3 * smooth_noise(rng, self.h, self.w, 4.0)
                self.canvas.paint(mask, WALL, dep, col * light, tex)

    def _plane_depth(self, xw: float) -> np.ndarray:
        """Per-column depth of a street-parallel plane at lateral xw."""
        dc = self.cols - self.cam.vp_x
        with np.errstate(divide='ignore', invalid='ignore'):
            z = self.cam.focal * xw / dc
        ok = (np.sign(dc) == np.sign(xw)) & np.isfinite(z) & (z > 0.5)
        return np.where(ok, z, np.nan).astype(np.float32)

    def _building(self, z_col: np.ndarray, depth: np.ndarray, z0: float,
                  z1: float, light: float) -> None:
        """One facade segment with a window grid in world coordinates."""
        rng = self.rng
        height = rng.uniform(6.0, 28.0)
        mask, y = self._plane_region(z_col, z0, z1, 0.0, height)
        if not mask.any():
            return
        base = self.tint(
            _jitter(rng, _FACADE_COLORS[rng.integers(len(_FACADE_COLORS))]))
        fine = smooth_noise(rng, self.h, self.w, 2.0)
        tex = 0.85 + 0.25 * fine
        img = np.broadcast_to(base * light, (self.h, self.w, 3)).copy()
        # Window grid: u runs along the street, v is the height.
        u = depth
        floor_h = rng.uniform(2.8, 3.6)
        win_sp = rng.uniform(2.0, 4.0)
        win_w = rng.uniform(0.35, 0.65)
        u = np.where(np.isfinite(u), u, 0.0)
        fu = np.mod(u - z0, win_sp) / win_sp
        fv = np.mod(y, floor_h) / floor_h
        windows = mask & (fu > 0.5 - win_w / 2) & (fu < 0.5 + win_w / 2) & (
            fv > 0.3) & (fv < 0.8) & (y > 2.5) & (
                y < height - 0.8)
        glass = self.tint(_jitter(rng, (0.2, 0.25, 0.3), 0.2))
        img[windows] = glass * (0.7 + 0.6 * fine[windows, None])
        if rng.random() < 0.4:
            # Horizontal cornice stripes between floors.
            stripes = mask & (np.mod(y, floor_h) < 0.25) & (y > 2.5)
            img[stripes] = base * light * 0.7
        # Ground floor: shop front (dark glass) on some buildings.
        if rng.random() < 0.5:
            shop = mask & (y > 0.3) & (y < 2.3) & (fu > 0.1) & (fu < 0.9)
            img[shop] = glass * 0.8
        self.canvas.paint(mask, BUILDING, depth, img, tex)

    # -- things ---------------------------------------------------------
    def _obj_frame(self, x: float, z: float) -> Tuple[float, float, float]:
        """Column of the object centre, row of its ground contact, px/m."""
        col, row = self.cam.project(x, 0.0, z)
        return col, row, self.cam.scale(z)

    def draw_tree(self, x: float, z: float) -> None:
        """Tree: trunk plus a crown made of a few overlapping ellipses."""
        rng = self.rng
        col, row, s = self._obj_frame(x, z)
        trunk_h = rng.uniform(2.0, 3.5)
        trunk = _rect_mask(self.shape, col - 0.15 * s, row - trunk_h * s,
                           col + 0.15 * s, row)
        crown = np.zeros(self.shape, bool)
        r = rng.uniform(1.2, 2.5)
        for _ in range(int(rng.integers(3, 6))):
            cx = col + rng.uniform(-0.8, 0.8) * r * s
            cy = row - (trunk_h + rng.uniform(0.3, 1.2) * r) * s
            rr = r * rng.uniform(0.6, 1.0) * s
            crown |= _ellipse_mask(self.shape, cx, cy, rr, rr * 0.9)
        bark = self.tint(_jitter(rng, (0.3, 0.22, 0.15)))
        leaf = self.tint(_jitter(rng, (0.18, 0.38, 0.12), 0.15))
        tex = 0.55 + 0.8 * smooth_noise(rng, self.h, self.w, max(1.0, 0.4 * s))
        self.canvas.paint(trunk, VEGETATION, z, bark)
        self.canvas.paint(crown, VEGETATION, z, leaf, tex)
        self.add_instance(VEGETATION, z, [trunk, crown])

    def draw_pole(self, x: float, z: float, kind: str) -> None:
        """Pole, optionally carrying a traffic light or a traffic sign."""
        rng = self.rng
        col, row, s = self._obj_frame(x, z)
        hgt = rng.uniform(4.0, 8.0) if kind != 'sign' else rng.uniform(
            2.5, 3.5)
        pw = rng.uniform(0.12, 0.22)
        pole = _rect_mask(self.shape, col - pw / 2 * s, row - hgt * s,
                          col + pw / 2 * s, row)
        metal = self.tint(_jitter(rng, (0.45, 0.45, 0.47), 0.2))
        self.canvas.paint(pole, POLE, z, metal * self.shade(1.0))
        parts = [pole]
        if kind == 'light':
            bw, bh = 0.35, 1.0
            top = row - hgt * s
            box = _rect_mask(self.shape, col - bw / 2 * s, top,
                             col + bw / 2 * s, top + bh * s)
            self.canvas.paint(box, LIGHT, z, (0.08, 0.08, 0.08))
            lit = int(rng.integers(3))
            lamp_colors = ((0.9, 0.1, 0.1), (0.9, 0.7, 0.1), (0.1, 0.85, 0.3))
            for k, lc in enumerate(lamp_colors):
                cy = top + (0.2 + 0.3 * k) * s
                lamp = _ellipse_mask(self.shape, col, cy, 0.1 * s,
                                     0.1 * s) & box
                c = np.asarray(lc, np.float32) * (1.0 if k == lit else 0.3)
                self.canvas.paint(lamp, LIGHT, z, c)
            parts.append(box)
            label = LIGHT
        elif kind == 'sign':
            cy = row - (hgt - 0.35) * s
            shape = rng.integers(3)
            if shape == 0:
                sign = _ellipse_mask(self.shape, col, cy, 0.35 * s, 0.35 * s)
                color = (0.1, 0.25, 0.7) if rng.random() < 0.5 else (0.8, 0.1,
                                                                     0.1)
            elif shape == 1:
                pts = np.array([[col, cy - 0.4 * s],
                                [col + 0.42 * s, cy + 0.3 * s],
                                [col - 0.42 * s, cy + 0.3 * s]])
                sign = _poly_mask(self.shape, pts)
                color = (0.85, 0.8, 0.2)
            else:
                sign = _rect_mask(self.shape, col - 0.35 * s, cy - 0.35 * s,
                                  col + 0.35 * s, cy + 0.35 * s)
                color = (0.85, 0.85,
                         0.85) if rng.random() < 0.5 else (0.1, 0.4, 0.2)
            self.canvas.paint(sign, SIGN, z - 0.05, self.tint(color))
            inner = _ellipse_mask(self.shape, col, cy, 0.15 * s, 0.15 * s)
            self.canvas.paint(inner & sign, SIGN, z - 0.05, (0.9, 0.9, 0.9))
            parts.append(sign)
            label = SIGN
        else:
            label = POLE
        self.add_instance(label, z, parts)

    def draw_person(self,
                    x: float,
                    z: float,
                    label: int = PERSON,
                    base_y: float = 0.0,
                    seated: bool = False) -> List[np.ndarray]:
        """Pedestrian (or seated rider) as head, torso, arms and legs."""
        rng = self.rng
        col, row, s = self._obj_frame(x, z)
        row = row - base_y * s
        hgt = rng.uniform(1.55, 1.9)
        cloth = _jitter(rng, _CLOTH_COLORS[rng.integers(len(_CLOTH_COLORS))])
        pants = _jitter(rng, _CLOTH_COLORS[rng.integers(len(_CLOTH_COLORS))])
        skin = _jitter(rng, _SKIN_COLORS[rng.integers(len(_SKIN_COLORS))])
        hip = row - 0.5 * hgt * s if not seated else row
        shoulder = row - 0.82 * hgt * s if not seated else row - 0.4 * hgt * s
        half = 0.2 * hgt * s * 0.7
        masks = []
        if not seated:
            stride = rng.uniform(0.0, 0.18) * hgt * s
            for sgn in (-1, 1):
                pts = np.array(
                    [[col + sgn * 0.02 * s, hip], [col + sgn * half, hip],
                     [col + sgn * (half * 0.5 + stride), row],
                     [col + sgn * (half * 0.5 + stride) - sgn * 0.12 * s,
                      row]])
                masks.append((_poly_mask(self.shape, pts), pants))
        torso = np.array([[col - half, shoulder], [col + half, shoulder],
                          [col + half * 0.85, hip + 0.04 * s],
                          [col - half * 0.85, hip + 0.04 * s]])
        masks.append((_poly_mask(self.shape, torso), cloth))
        for sgn in (-1, 1):
            arm = np.array(
                [[col + sgn * half, shoulder],
                 [col + sgn * (half + 0.09 * s), shoulder],
                 [col + sgn * (half + 0.12 * s), shoulder + 0.36 * hgt * s],
                 [col + sgn * (half + 0.02 * s), shoulder + 0.36 * hgt * s]])
            masks.append((_poly_mask(self.shape, arm), cloth * 0.9))
        head_r = 0.065 * hgt * s
        head = _ellipse_mask(self.shape, col, shoulder - head_r * 1.1, head_r,
                             head_r * 1.2)
        masks.append((head, skin))
        for m, c in masks:
            self.canvas.paint(m, label, z, self.tint(c) * self.shade(0.5))
        return [m for m, _ in masks]

    def draw_cycle(self, x: float, z: float, motor: bool) -> None:
        """Side view of a bicycle/motorcycle with a seated rider."""
        rng = self.rng
        col, row, s = self._obj_frame(x, z)
        length = 1.75 if not motor else 2.1
        wr = 0.34 if not motor else 0.32
        direction = 1 if rng.random() < 0.5 else -1
        label = MOTORCYCLE if motor else BICYCLE
        frame_c = self.tint(
            _jitter(rng, _CAR_COLORS[rng.integers(len(_CAR_COLORS))]))
        wheels = []
        for k in (-1, 1):
            cx = col + k * (length / 2 - wr) * s
            wheels.append(
                _ring_mask(self.shape, cx, row - wr * s, wr * s,
                           max(0.06 * s, 1.0) if not motor else wr * s))
        for m in wheels:
            self.canvas.paint(m, label, z, (0.08, 0.08, 0.08))
        if motor:
            body = np.array([[col - 0.6 * s, row - 0.45 * s],
                             [col + 0.6 * s, row - 0.45 * s],
                             [col + 0.5 * direction * s, row - 0.95 * s],
                             [col - 0.4 * s, row - 0.85 * s]])
        else:
            body = np.array([[col - (length / 2 - wr) * s, row - wr * s],
                             [col, row - wr * s],
                             [col + 0.3 * direction * s, row - 0.9 * s],
                             [col - 0.3 * direction * s, row - 0.85 * s]])
        bmask = _poly_mask(self.shape, body)
        if not motor:
            # Thin frame: keep only the outline band of the triangle.
            er = cv2.erode(bmask.astype(np.uint8), np.ones(
                (3, 3), np.uint8)).astype(bool)
            bmask = bmask & ~er if er.sum() > 4 else bmask
        self.canvas.paint(bmask, label, z, frame_c)
        rider = self.draw_person(
            x - 0.1 * direction,
            z - 0.3,
            RIDER,
            base_y=0.85 if not motor else 0.8,
            seated=True)
        # Legs of the rider down to the pedals (part of the rider).
        pedal_r = row - wr * s
        leg = np.array([[col - 0.15 * s, row - 0.85 * s],
                        [col + 0.15 * s, row - 0.85 * s],
                        [col + 0.1 * s, pedal_r], [col - 0.02 * s, pedal_r]])
        lmask = _poly_mask(self.shape, leg)
        self.canvas.paint(lmask, RIDER, z - 0.3, (0.15, 0.15, 0.2))
        self.add_instance(label, z, wheels + [bmask])
        self.add_instance(RIDER, z - 0.3, rider + [lmask])

    def _paint_wheels(self, x0: float, x1: float, row: float, w: float,
                      s: float, height: float, reach: float, label: int,
                      z: float) -> List[np.ndarray]:
        """Paint a vehicle's two dark wheels; return their masks.

        Each wheel spans ``0.05 .. reach`` of the vehicle width ``w`` (m)
        in from its end (``x0``, ``x1``) and ``height`` m up from ``row``;
        ``s`` is the scale in px per m.
        """
        wheels = [
            _rect_mask(self.shape, x0 + 0.05 * w * s, row - height * s,
                       x0 + reach * w * s, row),
            _rect_mask(self.shape, x1 - reach * w * s, row - height * s,
                       x1 - 0.05 * w * s, row)
        ]
        for m in wheels:
            self.canvas.paint(m, label, z, (0.05, 0.05, 0.05))
        return wheels

    def draw_vehicle(self, x: float, z: float, label: int) -> None:
        """Rear view of a car, truck, bus or tram."""
        rng = self.rng
        col, row, s = self._obj_frame(x, z)
        dims = {
            CAR: (1.8, 1.5),
            TRUCK: (2.5, 3.4),
            BUS: (2.6, 3.2),
            TRAIN: (2.7, 3.7)
        }[label]
        w, h = dims[0] * rng.uniform(0.92, 1.08), dims[1] * rng.uniform(
            0.92, 1.08)
        body_c = self.tint(
            _jitter(rng, _CAR_COLORS[rng.integers(len(_CAR_COLORS))]))
        if label in (BUS, TRAIN):
            body_c = self.tint(
                _jitter(rng,
                        ((0.85, 0.75, 0.2), (0.8, 0.15, 0.1), (0.9, 0.9, 0.9),
                         (0.2, 0.45, 0.7))[rng.integers(4)]))
        light = self.shade(0.3)
        x0, x1 = col - w / 2 * s, col + w / 2 * s
        masks = []
        if label == CAR:
            low_top = row - 0.85 * h * s * 0.62
            body = _rect_mask(self.shape, x0, low_top, x1, row - 0.18 * s)
            cabin = _poly_mask(
                self.shape,
                np.array([[x0 + 0.08 * w * s, low_top],
                          [x1 - 0.08 * w * s, low_top],
                          [x1 - 0.2 * w * s, row - h * s],
                          [x0 + 0.2 * w * s, row - h * s]]))
            masks += [body, cabin]
            masks += self._paint_wheels(x0, x1, row, w, s, 0.3, 0.22, label, z)
            self.canvas.paint(body, label, z, body_c * light)
            self.canvas.paint(cabin, label, z, body_c * light * 0.95)
            window = _poly_mask(
                self.shape,
                np.array([[x0 + 0.14 * w * s, low_top - 0.05 * s],
                          [x1 - 0.14 * w * s, low_top - 0.05 * s],
                          [x1 - 0.24 * w * s, row - (h - 0.08) * s],
                          [x0 + 0.24 * w * s, row - (h - 0.08) * s]]))
            self.canvas.paint(window, label, z, (0.12, 0.14, 0.18))
            lamp_y = low_top + 0.1 * s
            for lx in (x0 + 0.04 * w * s, x1 - 0.2 * w * s):
                lamp = _rect_mask(self.shape, lx, lamp_y, lx + 0.16 * w * s,
                                  lamp_y + 0.12 * s)
                self.canvas.paint(lamp, label, z, (0.75, 0.08, 0.05))
            plate = _rect_mask(self.shape, col - 0.25 * s, row - 0.55 * s,
                               col + 0.25 * s, row - 0.42 * s)
            self.canvas.paint(plate, label, z, (0.9, 0.9, 0.85))
        else:
            body = _rect_mask(self.shape, x0, row - h * s, x1, row - 0.2 * s)
            masks.append(body)
            tex = 0.9 + 0.15 * smooth_noise(rng, self.h, self.w, 3.0)
            masks += self._paint_wheels(x0, x1, row, w, s, 0.4, 0.2, label, z)
            self.canvas.paint(body, label, z, body_c * light, tex)
            if label in (BUS, TRAIN):
                win = _rect_mask(self.shape, x0 + 0.08 * w * s,
                                 row - (h - 0.2) * s, x1 - 0.08 * w * s,
                                 row - 0.5 * h * s)
                self.canvas.paint(win, label, z, (0.1, 0.12, 0.16))
            else:
                # Cargo box with vertical door seams.
                seam = _rect_mask(self.shape, col - 0.03 * s,
                                  row - (h - 0.2) * s, col + 0.03 * s,
                                  row - 0.5 * s)
                self.canvas.paint(seam, label, z, body_c * light * 0.5)
            for lx in (x0 + 0.05 * w * s, x1 - 0.17 * w * s):
                lamp = _rect_mask(self.shape, lx, row - 0.7 * s,
                                  lx + 0.12 * w * s, row - 0.55 * s)
                self.canvas.paint(lamp, label, z, (0.75, 0.08, 0.05))
        self.add_instance(label, z, masks)

    # -- layout -----------------------------------------------------------
    def place_objects(self) -> List[Tuple[float, Callable[[], None]]]:
        """Sample all objects; returns ``(depth, draw_fn)`` pairs."""
        rng = self.rng
        objs: List[Tuple[float, Callable[[], None]]] = []

        def add(z: float, fn: Callable[..., None], *args) -> None:
            objs.append((z, lambda: fn(*args)))

        for side in (-1, 1):
            i = 0 if side < 0 else 1
            # Trees on the grass strip or at the outer sidewalk edge.
            if rng.random() < 0.75:
                z = rng.uniform(4.0, 12.0)
                spacing = rng.uniform(7.0, 15.0)
                xt = self.side_x(
                    side, self.walk_w[i] + 0.5 * self.grass_w[i]
                    if self.grass_w[i] > 0 else self.walk_w[i] - 0.6)
                while z < min(self.z_end, 90.0):
                    add(z, self.draw_tree, xt, z)
                    z += spacing * rng.uniform(0.8, 1.2)
            # Poles along the kerb, some carrying lights or signs.
            z = rng.uniform(3.0, 12.0)
            while z < 70.0:
                kind = ('light', 'sign',
                        'pole')[rng.choice(3, p=(0.3, 0.35, 0.35))]
                add(z, self.draw_pole, self.side_x(side, 0.4), z, kind)
                z += rng.uniform(8.0, 25.0)
            # Pedestrians on the sidewalk.
            for _ in range(int(rng.integers(0, 4))):
                z = rng.uniform(4.0, 35.0)
                xp = self.side_x(side, rng.uniform(0.5, self.walk_w[i] - 0.3))
                add(z, self.draw_person, xp, z)
            # Parked cars along the kerb.
            z = rng.uniform(4.0, 15.0)
            if rng.random() < 0.6:
                for _ in range(int(rng.integers(1, 4))):
                    xc = self.road_c + side * (self.road_hw - 1.1)
                    add(z, self.draw_vehicle, xc, z, CAR)
                    z += rng.uniform(5.5, 12.0)
        # Moving traffic in the lanes.
        lanes = (self.road_c - self.road_hw / 2,
                 self.road_c + self.road_hw / 2)
        for lane in lanes:
            z = rng.uniform(5.0, 20.0)
            for _ in range(int(rng.integers(0, 3))):
                label = (CAR, TRUCK, BUS,
                         TRAIN)[rng.choice(4, p=(0.62, 0.17, 0.15, 0.06))]
                add(z, self.draw_vehicle, lane + rng.uniform(-0.4, 0.4), z,
                    label)
                z += rng.uniform(9.0, 25.0)
        # Cyclists / motorcyclists near the kerb or crossing.
        for _ in range(int(rng.choice(3, p=(0.4, 0.4, 0.2)))):
            z = rng.uniform(5.0, 30.0)
            xc = self.road_c + rng.uniform(-0.8, 0.8) * self.road_hw
            add(z, self.draw_cycle, xc, z, rng.random() < 0.4)
        return objs

    def render(self) -> Scene:
        """Render the full scene."""
        self.draw_sky()
        self.draw_ground()
        self.draw_side(-1)
        self.draw_side(1)
        objs = self.place_objects()
        # Painter's algorithm: far to near (stable for equal depths).
        for _, draw in sorted(objs, key=lambda o: -o[0]):
            draw()
        cv = self.canvas
        # Global illumination gain plus a faint per-pixel grain so that
        # flat regions are not perfectly uniform.
        grain = self.rng.normal(0.0, 0.012, cv.image.shape)
        img = (cv.image * self.gain + grain).clip(0.0, 1.0)
        image = np.round(img * 255.0).astype(np.uint8)
        depth = np.where(np.isfinite(cv.depth), cv.depth,
                         SKY_DEPTH).astype(np.float32)
        return Scene(
            image=image,
            label=cv.label.copy(),
            depth=depth,
            instances=self.instances)


def render_scene(rng: np.random.Generator, height: int, width: int) -> Scene:
    """Render one procedural street scene.

    Args:
        rng: Random generator; the scene is a pure function of its state.
        height: Image height in pixels.
        width: Image width in pixels.

    Returns:
        The rendered :class:`Scene` (RGB image, trainId label, depth).
    """
    if height < 8 or width < 8:
        raise ValueError(f'image too small: {height}x{width}')
    return _SceneRenderer(rng, height, width).render()
