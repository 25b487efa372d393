"""Test-time adaptation methods: one file each, registered by name."""
from mmengine.registry import build_from_cfg

from ..registry import TTA_METHODS
from .base import TTAMethod
from .bn_adapt import BNAdapt
from .cotta import CoTTA
from .eata import EATA
from .ecotta import EcoTTA
from .source import Source
from .tent import Tent


def build_tta_method(cfg: dict, model) -> TTAMethod:
    """Build a registered method around ``model``.

    Raises:
        KeyError: For an unknown ``type``, listing the registered names.
    """
    name = cfg.get('type')
    if name not in TTA_METHODS.module_dict:
        raise KeyError(f'unknown TTA method {name!r}; registered methods: '
                       f'{sorted(TTA_METHODS.module_dict)}')
    return build_from_cfg(cfg, TTA_METHODS, default_args=dict(model=model))


__all__ = [
    'TTAMethod', 'Source', 'BNAdapt', 'Tent', 'EATA', 'CoTTA', 'EcoTTA',
    'build_tta_method'
]
