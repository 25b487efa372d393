"""Tests of the physics-based weather models."""

import numpy as np
import pytest

from mmseg_ecotta.synthetic.scenes import SKY, render_scene
from mmseg_ecotta.synthetic.weather import (CONDITIONS, apply_weather,
                                            ground_mask)

H, W = 64, 128


@pytest.fixture(scope='module')
def scenes():
    return [render_scene(np.random.default_rng(s), H, W) for s in range(4)]


def _weather(cond, scene, seed=0):
    return apply_weather(cond, scene.image, scene.depth,
                         np.random.default_rng(seed))


@pytest.mark.parametrize('cond', CONDITIONS)
def test_output_format_and_determinism(scenes, cond) -> None:
    scene = scenes[0]
    out = _weather(cond, scene)
    assert out.shape == scene.image.shape and out.dtype == np.uint8
    assert np.array_equal(out, _weather(cond, scene))
    assert not np.array_equal(out, _weather(cond, scene, seed=1))
    # Strong degradation: the mean absolute change is large.
    diff = np.abs(out.astype(float) - scene.image.astype(float)).mean()
    assert diff > 10.0, (cond, diff)


def test_unknown_condition(scenes) -> None:
    with pytest.raises(ValueError, match='fog'):
        _weather('sandstorm', scenes[0])


def test_fog_far_pixels_converge_to_airlight(scenes) -> None:
    for scene in scenes:
        out = _weather('fog', scene).astype(float)
        gray = out.mean(axis=2)
        sky = scene.label == SKY
        airlight = gray[sky].mean()
        near = scene.depth < 10.0
        far = (scene.depth > 60.0) & ~sky
        if not near.any() or not far.any():
            continue
        # Transmission exp(-beta d) vanishes with distance: far pixels
        # sit closer to the airlight and vary less than near ones.
        assert np.abs(gray[far] - airlight).mean() < np.abs(gray[near] -
                                                            airlight).mean()
        assert gray[far].std() < gray[near].std()
        # Airlight is a near-white grey.
        assert airlight > 150
        rgb = out[sky].mean(axis=0)
        assert rgb.max() - rgb.min() < 15


def test_night_much_darker(scenes) -> None:
    for scene in scenes:
        out = _weather('night', scene)
        assert out.mean() < 0.6 * scene.image.mean()
        # Bluish tint on average (outside light sources).
        dark = out.max(axis=2) < 200
        assert out[dark][:, 2].mean() > out[dark][:, 0].mean()


def test_snow_brighter_lower_contrast(scenes) -> None:
    for scene in scenes:
        out = _weather('snow', scene).astype(float)
        clear = scene.image.astype(float)
        assert out.mean() > clear.mean() + 20
        # The bright veil lowers the contrast of the upright structures
        # (the ground gets white cover, which may add contrast there).
        upright = (ground_mask(scene.depth) == 0) & (scene.label != SKY)
        assert out[upright].std() < clear[upright].std()


def test_rain_changes_and_lowers_contrast(scenes) -> None:
    for scene in scenes:
        out = _weather('rain', scene).astype(float)
        clear = scene.image.astype(float)
        # Veiling scattering and blur reduce contrast.
        assert out.std() < clear.std()
        # Streaks are thin bright lines: high-frequency energy along
        # the rain direction appears where the clear image is smooth.
        assert np.abs(out - clear).mean() > 10


def test_ground_mask_from_depth(scenes) -> None:
    scene = scenes[0]
    ground = ground_mask(scene.depth) > 0
    # Ground plane = road/sidewalk/terrain rows; never the sky.
    assert not ground[scene.label == SKY].any()
    road = scene.label == 0
    assert ground[road].mean() > 0.8
