"""Config loading shared by the command-line tools."""
import math
import os
import os.path as osp
from typing import Any, Optional

from mmengine.config import Config
from mmseg.registry import MODELS

from ..registry import TTA_METHODS
from ..safe_load import allow_nonfinite, allow_unsafe_load

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


def check_finite_settings(cfg: Any, where: str, key: str = '') -> None:
    """Raise if a number in ``cfg`` is NaN or infinite.

    ``lr=inf`` through ``--cfg-options`` would run until the first results
    are written and then fail there; no setting of a config is meant to be
    non-finite, so it is refused before anything runs.

    Args:
        cfg: A config, or any part of one (dicts, lists, values).
        where (str): Where it comes from, for the message.
        key (str): The dotted key of ``cfg`` in the whole config.

    Raises:
        ValueError: Names the key and the value.
    """
    if isinstance(cfg, float) and not math.isfinite(cfg):
        raise ValueError(
            f'{key}={cfg} in {where}: settings must be finite numbers; give '
            'a finite value (check --cfg-options)')
    items = cfg.items() if isinstance(
        cfg, dict) else enumerate(cfg) if (isinstance(cfg,
                                                      (list, tuple))) else ()
    for k, value in items:
        check_finite_settings(value, where, f'{key}.{k}' if key else str(k))


def apply_config_opt_ins(cfg: Config, where: str) -> None:
    """Apply a config's ``unsafe_load`` and ``allow_nonfinite`` keys.

    Read by :func:`load_config` and, for mmseg's own tools, by the
    ``TestTimeAdaptationHook`` (see :mod:`mmseg_ecotta.safe_load`).

    Raises:
        ValueError: A key is set to something else than True or False.
    """
    for key, allow in (('unsafe_load', allow_unsafe_load), ('allow_nonfinite',
                                                            allow_nonfinite)):
        value = cfg.get(key, False)
        if not isinstance(value, bool):
            raise ValueError(f'{key}={value!r} in {where}: give True or '
                             'False (the default)')
        if value:
            allow(f'{key} = True in {where}')


def load_config(path: str,
                cfg_options: Optional[dict] = None,
                work_dir: Optional[str] = None,
                unsafe_load: bool = False,
                allow_nonfinite_weights: bool = False) -> Config:
    """Load a config like mmseg's tools do, plus the plugin-import check.

    A top-level ``unsafe_load = True`` in the config (or ``unsafe_load``
    here, the tools' ``--unsafe-load``) is the opt-in of
    :mod:`mmseg_ecotta.safe_load`: this process then unpickles every
    checkpoint, state and Fisher file in full, with a warning.
    ``allow_nonfinite = True`` (``--allow-nonfinite``) loads checkpoints
    with NaN or inf weights. A NaN or infinite setting is refused
    (:func:`check_finite_settings`).

    Args:
        path (str): Config file.
        cfg_options (dict, optional): ``--cfg-options`` overrides.
        work_dir (str, optional): Work dir; defaults to the config's own
            ``work_dir`` or ``work_dirs/<config name>``.
        unsafe_load (bool): Set ``unsafe_load = True`` in the config.
            Defaults to False.
        allow_nonfinite_weights (bool): Set ``allow_nonfinite = True`` in
            the config. Defaults to False.

    Returns:
        Config: The merged config.

    Raises:
        FileNotFoundError: No config at ``path``.
        ValueError: A NaN or infinite setting, an opt-in that is not a
            bool, or a symlink where the runner writes the config in the
            work dir (it would overwrite the link's target).
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'config file {path!r} does not exist')
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    check_plugin_import(cfg, path)
    check_finite_settings(cfg.to_dict(), path)
    # The command line first: the opt-ins are reported from where given.
    if unsafe_load:
        allow_unsafe_load('--unsafe-load')
        cfg.unsafe_load = True
    if allow_nonfinite_weights:
        allow_nonfinite('--allow-nonfinite')
        cfg.allow_nonfinite = True
    apply_config_opt_ins(cfg, path)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(path))[0])
    # mmengine's runner writes the config there with open(), which would
    # overwrite the target of a symlink planted in a shared work dir.
    dump = osp.join(cfg.work_dir, osp.basename(path))
    if osp.islink(dump):
        raise ValueError(
            f'{dump} is a symlink (to {os.readlink(dump)}): the run writes '
            'its config there and would overwrite the target; remove the '
            'link or give another --work-dir')
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
