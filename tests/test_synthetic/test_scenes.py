"""Tests of the procedural street-scene renderer."""

import numpy as np
import pytest

from mmseg_ecotta.synthetic.scenes import (CAR, SKY, SKY_DEPTH, TRUCK, Canvas,
                                           _SceneRenderer, render_scene)

H, W = 64, 128


def _scene(seed: int):
    return render_scene(np.random.default_rng(seed), H, W)


def test_shapes_and_dtypes() -> None:
    scene = _scene(0)
    assert scene.image.shape == (H, W, 3) and scene.image.dtype == np.uint8
    assert scene.label.shape == (H, W) and scene.label.dtype == np.uint8
    assert scene.depth.shape == (H, W)
    assert scene.depth.dtype == np.float32


def test_deterministic() -> None:
    a, b, c = _scene(3), _scene(3), _scene(4)
    assert np.array_equal(a.image, b.image)
    assert np.array_equal(a.label, b.label)
    assert np.array_equal(a.depth, b.depth)
    assert not np.array_equal(a.image, c.image)


def test_labels_valid_and_coverage() -> None:
    seen = set()
    for seed in range(20):
        label = _scene(seed).label
        values = set(np.unique(label).tolist())
        assert values <= set(range(19)) | {255}
        seen |= values - {255}
    assert len(seen) >= 12, sorted(seen)


def test_depth_positive_and_sky_farthest() -> None:
    for seed in range(5):
        scene = _scene(seed)
        assert np.all(np.isfinite(scene.depth))
        assert np.all(scene.depth > 0)
        sky = scene.label == SKY
        assert sky.any()
        assert np.all(scene.depth[sky] == SKY_DEPTH)
        assert scene.depth[~sky].max() < SKY_DEPTH


def test_ground_depth_decreases_downwards() -> None:
    scene = _scene(1)
    # The bottom row is the nearest ground; rows above are farther.
    col = scene.depth[:, W // 2]
    assert col[-1] < col[-10] < SKY_DEPTH


def test_instances_are_consistent() -> None:
    scene = _scene(5)
    assert scene.instances
    for inst in scene.instances:
        x0, y0, x1, y1 = inst['bbox']
        assert 0 <= x0 < x1 <= W and 0 <= y0 < y1 <= H


def test_canvas_occlusion_order_independent() -> None:
    far_mask = np.zeros((8, 8), bool)
    far_mask[2:6, 1:5] = True
    near_mask = np.zeros((8, 8), bool)
    near_mask[3:7, 3:7] = True
    results = []
    for order in ((0, 1), (1, 0)):
        canvas = Canvas(8, 8)
        prims = [(far_mask, 2, 30.0, (0.2, 0.2, 0.2)),
                 (near_mask, CAR, 5.0, (0.9, 0.1, 0.1))]
        for k in order:
            canvas.paint(*prims[k])
        results.append(canvas)
        overlap = far_mask & near_mask
        assert np.all(canvas.label[overlap] == CAR)
        assert np.all(canvas.depth[overlap] == 5.0)
        assert np.all(canvas.label[far_mask & ~near_mask] == 2)
    assert np.array_equal(results[0].label, results[1].label)
    assert np.array_equal(results[0].image, results[1].image)


def _street(seed: int) -> _SceneRenderer:
    renderer = _SceneRenderer(np.random.default_rng(seed), H, W)
    renderer.draw_sky()
    renderer.draw_ground()
    renderer.draw_side(-1)
    renderer.draw_side(1)
    return renderer


def test_scene_occlusion_near_objects_win() -> None:
    # Silhouettes of a near car and a far truck drawn alone ...
    alone = {}
    for label, z in ((CAR, 6.0), (TRUCK, 20.0)):
        r = _street(7)
        r.rng = np.random.default_rng(label)  # same draws as below
        r.draw_vehicle(r.road_c, z, label)
        alone[label] = (r.canvas.label == label) & (r.canvas.depth == z)
    overlap = alone[CAR] & alone[TRUCK]
    assert overlap.any()
    # ... then together, the far one drawn last (worst case for a pure
    # painter's algorithm): the near car still owns the overlap.
    r = _street(7)
    r.rng = np.random.default_rng(CAR)
    r.draw_vehicle(r.road_c, 6.0, CAR)
    r.rng = np.random.default_rng(TRUCK)
    r.draw_vehicle(r.road_c, 20.0, TRUCK)
    assert np.all(r.canvas.label[overlap] == CAR)
    assert np.all(r.canvas.depth[overlap] == 6.0)
    truck_only = alone[TRUCK] & ~alone[CAR]
    assert np.all(r.canvas.label[truck_only] == TRUCK)
    assert np.all(r.canvas.depth[truck_only] == 20.0)
    # The near car is in front of everything behind it.
    background = _street(7).canvas.depth
    assert np.all(background[alone[CAR]] > 6.0)


def test_rejects_tiny_images() -> None:
    with pytest.raises(ValueError):
        render_scene(np.random.default_rng(0), 4, 4)
