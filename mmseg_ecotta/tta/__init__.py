"""Test-time adaptation methods: one file each, registered by name."""
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
    # Looked up directly, not with build_from_cfg: that would search the
    # run's default scope ('mmseg') in this plugin-only registry and warn
    # on every run that it fell back to the registry it was given.
    args = {k: v for k, v in cfg.items() if k != 'type'}
    return TTA_METHODS.get(name)(model=model, **args)


__all__ = [
    'TTAMethod', 'Source', 'BNAdapt', 'Tent', 'EATA', 'CoTTA', 'EcoTTA',
    'build_tta_method'
]
