"""Config loading shared by the command-line tools."""
import os.path as osp
from typing import Optional

from mmengine.config import Config
from mmseg.registry import MODELS

from ..registry import TTA_METHODS
from ..safe_load import allow_unsafe_load

PLUGIN_IMPORT = ("custom_imports = dict(imports=['mmseg_ecotta'], "
                 'allow_failed_imports=False)')
# The configs the package ships (mmseg's layout: <package>/.mim/configs, a
# link to the checkout's configs/ there, copied into a built wheel).
CONFIGS_DIR = osp.join(
    osp.dirname(osp.dirname(osp.abspath(__file__))), '.mim', 'configs')
# Each method's defaults: _base_/tta/<method module>.py.
METHOD_DEFAULTS_DIR = osp.join(CONFIGS_DIR, '_base_', 'tta')


def _plugin_types(obj) -> set:
    """Collect ``type`` names in ``obj`` that only this plugin registers."""
    found = set()
    if isinstance(obj, dict):
        type_name = obj.get('type')
        if isinstance(type_name, str):
            module = MODELS.get(type_name) if type_name in MODELS else None
            if module is not None and module.__module__.startswith(
                    'mmseg_ecotta'):
                found.add(type_name)
        for value in obj.values():
            found |= _plugin_types(value)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            found |= _plugin_types(value)
    return found


def check_plugin_import(cfg: Config, filename: str = 'config') -> None:
    """Raise if ``cfg`` uses plugin types without importing the plugin.

    Our own tools import the plugin anyway, but mmseg's ``tools/test.py``
    and ``tools/train.py`` do not: catching it here keeps such a config from
    failing later, elsewhere, with a bare registry ``KeyError``.
    """
    imports = (cfg.get('custom_imports') or {}).get('imports', [])
    if isinstance(imports, str):
        imports = [imports]
    if any(i == 'mmseg_ecotta' or i.startswith('mmseg_ecotta.')
           for i in imports):
        return
    used = _plugin_types(cfg.to_dict())
    if used:
        raise ValueError(
            f'{filename} uses {sorted(used)} from mmseg_ecotta but does not '
            f'import the plugin; add this line to it: {PLUGIN_IMPORT}')


def load_config(path: str,
                cfg_options: Optional[dict] = None,
                work_dir: Optional[str] = None,
                unsafe_load: bool = False) -> Config:
    """Load a config like mmseg's tools do, plus the plugin-import check.

    A top-level ``unsafe_load = True`` in the config (or ``unsafe_load``
    here, the tools' ``--unsafe-load``) is the opt-in of
    :mod:`mmseg_ecotta.safe_load`: this process then unpickles every
    checkpoint, state and Fisher file in full, with a warning.

    Args:
        path (str): Config file.
        cfg_options (dict, optional): ``--cfg-options`` overrides.
        work_dir (str, optional): Work dir; defaults to the config's own
            ``work_dir`` or ``work_dirs/<config name>``.
        unsafe_load (bool): Set ``unsafe_load = True`` in the config.
            Defaults to False.

    Returns:
        Config: The merged config.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'config file {path!r} does not exist')
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    check_plugin_import(cfg, path)
    if unsafe_load:
        cfg.unsafe_load = True
    elif not isinstance(cfg.get('unsafe_load', False), bool):
        raise ValueError(f'unsafe_load={cfg.unsafe_load!r} in {path}: give '
                         'True or False (the default)')
    if cfg.get('unsafe_load', False):
        allow_unsafe_load('--unsafe-load'
                          if unsafe_load else f'unsafe_load = True in {path}')
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(path))[0])
    return cfg


def method_defaults(name: str) -> dict:
    """The method config that ``configs/_base_/tta/`` ships for ``name``.

    The file is named after the method's module (``EcoTTA`` ->
    ``ecotta.py``); its ``adaptation.method`` is the config every run of
    that method inherits.

    Args:
        name (str): A registered method, e.g. ``'Tent'``.

    Returns:
        dict: The method config, ``type`` included.

    Raises:
        KeyError: For an unregistered method, listing the registered ones.
    """
    if name not in TTA_METHODS.module_dict:
        raise KeyError(f'unknown TTA method {name!r}; registered methods: '
                       f'{sorted(TTA_METHODS.module_dict)}')
    module = TTA_METHODS.get(name).__module__.rsplit('.', 1)[-1]
    path = osp.join(METHOD_DEFAULTS_DIR, f'{module}.py')
    return Config.fromfile(path).adaptation.method.to_dict()
