"""mmseg-ecotta: memory-efficient continual test-time adaptation for mmseg.

Importing this package applies the compatibility shims of
:mod:`mmseg_ecotta.compat` and registers every model, dataset, transform,
metric and hook it defines into mmseg's registries, so a config loads it
with ``custom_imports = dict(imports=['mmseg_ecotta'])``.

It also makes its shipped configs (``mmseg_ecotta/.mim/configs``, as mmseg
ships ``mmseg/.mim/configs``) inheritable from another project,
``_base_ = ['mmseg_ecotta::ecotta/ecotta_...py']``: mmengine resolves
``pkg::`` only for packages in its ``MODULE2PACKAGE`` map, so the config
must be parsed after this import (the plugin's tools import it first).
"""
from mmengine.config.utils import MODULE2PACKAGE

from .compat import apply_all

ACTIVE_SHIMS = apply_all()
# Module -> distribution for mmengine's ``pkg::`` configs; the module name
# finds the distribution too (names are normalised) and, unlike
# 'mmseg-ecotta', is the folder that holds .mim/configs.
MODULE2PACKAGE.setdefault('mmseg_ecotta', 'mmseg_ecotta')

from . import datasets, engine, evaluation, models, tta  # noqa: E402,F401

__version__ = '0.1.0'
