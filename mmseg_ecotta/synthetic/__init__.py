"""Embedded synthetic Cityscapes -> ACDC stream (numpy + OpenCV only).

Nothing in this subpackage imports mmseg or mmengine, so the stream can
be generated without the segmentation stack.
"""

from .generate import (GENERATOR_VERSION, SEQUENCES, SOURCE_CITIES, acdc_paths,
                       cityscapes_paths, generate_synthetic_stream)
from .scenes import CLASSES, IGNORE_INDEX, SKY_DEPTH, Scene, render_scene
from .weather import CONDITIONS, apply_weather

__all__ = [
    'CLASSES', 'CONDITIONS', 'GENERATOR_VERSION', 'IGNORE_INDEX', 'SEQUENCES',
    'SKY_DEPTH', 'SOURCE_CITIES', 'Scene', 'acdc_paths', 'apply_weather',
    'cityscapes_paths', 'generate_synthetic_stream', 'render_scene'
]
