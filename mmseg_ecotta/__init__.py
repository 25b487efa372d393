"""mmseg-ecotta: memory-efficient continual test-time adaptation for mmseg.

Importing this package applies the compatibility shims of
:mod:`mmseg_ecotta.compat` and registers every model, dataset, transform,
metric and hook it defines into mmseg's registries, so a config loads it
with ``custom_imports = dict(imports=['mmseg_ecotta'])``.
"""
from .compat import apply_all

ACTIVE_SHIMS = apply_all()

from . import datasets, engine, evaluation, models, tta  # noqa: E402,F401

__version__ = '0.1.0'
