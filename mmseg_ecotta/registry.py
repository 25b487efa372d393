"""The plugin's own registry: test-time adaptation methods.

Models, datasets, transforms, metrics and hooks go into mmseg's registries;
only TTA methods, which mmseg has no notion of, get a registry here.
"""
from mmengine.registry import Registry

TTA_METHODS = Registry('tta method', locations=['mmseg_ecotta.tta'])
