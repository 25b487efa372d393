"""Build what a TTA config describes: its method around its model.

The one place that reads a config's ``adaptation`` settings and builds
model + checkpoint + method outside a runner (the memory report, the
Fisher tool) or a runner and its hooks (``tools/test_tta.py``, the
soak test).
"""
import os.path as osp
from typing import Any, Dict, Optional, Type, TypeVar

import torch.nn as nn
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.registry import init_default_scope
from mmengine.runner import Runner, load_checkpoint
from mmseg.registry import MODELS

from ..engine.tta_hook import AdaptationSettings
from ..registry import TTA_METHODS
from ..tta import TTAMethod, build_tta_method

HOOK_TYPE = 'TestTimeAdaptationHook'
HookT = TypeVar('HookT', bound=Hook)


def adaptation_config(cfg: Config, path: str = 'the config') -> Dict[str, Any]:
    """The ``adaptation`` dict of a TTA config, its hook checked.

    The dict itself (not a copy): changing it changes the config.

    Args:
        cfg (Config): A TTA config.
        path (str): Its file, for the error messages.

    Raises:
        ValueError: The config has no ``adaptation`` dict, or no
            ``TestTimeAdaptationHook`` in ``custom_hooks`` to read it; the
            message shows what to add and lists the registered methods.
    """
    example = (f"adaptation = dict(method=dict(type='Tent')) (methods: "
               f'{sorted(TTA_METHODS.module_dict)})')
    for hook in cfg.get('custom_hooks', None) or []:
        if hook.get('type') == HOOK_TYPE:
            break
    else:
        raise ValueError(
            f"{path} has no {HOOK_TYPE} in custom_hooks; add custom_hooks = "
            f"[dict(type='{HOOK_TYPE}')] and {example}, or give a TTA "
            'config, e.g. configs/tent/tent_deeplabv3plus_r50-d8_1xb1-'
            '10rounds_cityscapes2acdc-540x960.py')
    # The hook's own check: the same errors as in a run.
    AdaptationSettings.from_config(cfg, path)
    return cfg.adaptation


def method_config(cfg: Config, path: str = 'the config') -> Dict[str, Any]:
    """A copy of ``cfg.adaptation.method``, the config's TTA method."""
    adaptation_config(cfg, path)
    return AdaptationSettings.from_config(cfg, path).method


def build_model(cfg: Config,
                checkpoint: Optional[str] = None,
                **overrides: Any) -> nn.Module:
    """``cfg.model`` with the checkpoint loaded, as the test loop leaves it.

    Args:
        cfg (Config): A config with a ``model``.
        checkpoint (str, optional): Weights, loaded strictly. None keeps
            the random initialisation (``init_weights`` is not called:
            memory and time do not depend on the values).
        **overrides: Model config keys to change, e.g.
            ``frozen_norm_mode='batch'``.

    Returns:
        nn.Module: In eval mode (dropout off), as mmengine's ``TestLoop``.
    """
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model = MODELS.build(dict(cfg.model, **overrides))
    if checkpoint is not None:
        load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
    return model.eval()


def build_method(cfg: Config,
                 checkpoint: Optional[str] = None,
                 method: Optional[Dict[str, Any]] = None,
                 device: str = 'cpu',
                 **model_overrides: Any) -> TTAMethod:
    """Build the model of ``cfg`` and its TTA method around it.

    As :class:`~mmseg_ecotta.engine.TestTimeAdaptationHook` does in a run:
    the method is built after the weights are loaded.

    Args:
        cfg (Config): A TTA config.
        checkpoint (str, optional): See :func:`build_model`.
        method (dict, optional): Method config; defaults to the one of the
            config's hook (:func:`method_config`).
        device (str): Where the model goes before the method is built.
            Defaults to ``'cpu'``.
        **model_overrides: See :func:`build_model`.

    Returns:
        TTAMethod: The built method; its ``model`` is the built model.
    """
    method = method_config(cfg) if method is None else method
    model = build_model(cfg, checkpoint, **model_overrides).to(device)
    return build_tta_method(method, model)


def tta_test_config(cfg: Config,
                    checkpoint: str,
                    launcher: str = 'none',
                    resume: bool = False,
                    show_dir: Optional[str] = None,
                    show_frames: int = 2,
                    show_interval: int = 20,
                    export_adapted: Optional[str] = None,
                    trace: bool = False,
                    progress: bool = False) -> Config:
    """``cfg`` set up as ``tools/test_tta.py``'s options say.

    Args:
        cfg (Config): A TTA config (changed in place and returned).
        checkpoint (str): Source (or warmed-up) weights, ``load_from``: a
            file, or an address mmengine fetches (``https://``,
            ``open-mmlab://`` ...), loaded as safely as a file.
        launcher (str): mmengine launcher. Defaults to ``'none'``.
        resume (bool): Continue the stream from the work dir's state file.
            Defaults to False.
        show_dir (str, optional): Write overlays here with
            :class:`~mmseg_ecotta.engine.StreamVisualizationHook`.
        show_frames (int): Frames drawn per domain and round. Defaults to 2.
        show_interval (int): Spacing in images of the drawn frames.
            Defaults to 20.
        export_adapted (str, optional): ``'final'`` or ``'every-domain'``:
            add an :class:`~mmseg_ecotta.engine.AdaptedModelExportHook`.
        trace (bool): Record what each update does
            (``adaptation.trace``, :class:`~mmseg_ecotta.engine.
            AdaptationTraceHook`). Defaults to False.
        progress (bool): Add a progress bar. Defaults to False.

    Raises:
        FileNotFoundError: ``checkpoint`` is a path that does not exist.
        ValueError: The config has no ``adaptation`` or no
            ``TestTimeAdaptationHook``.
    """
    if '://' not in checkpoint and not osp.isfile(checkpoint):
        raise FileNotFoundError(
            f'checkpoint {checkpoint!r} does not exist; for the '
            'embedded default see data/checkpoints/ (docs/get_started.md)')
    adaptation = adaptation_config(cfg, cfg.filename or 'the config')
    if resume:
        adaptation['resume'] = True
    if trace:
        adaptation['trace'] = True
    cfg.load_from = checkpoint
    cfg.launcher = launcher
    if show_dir:
        # Replaces mmseg's SegVisualizationHook: file names carry the
        # round and domain, and each domain gets the same sample of frames.
        cfg.default_hooks.visualization = dict(
            type='StreamVisualizationHook',
            out_dir=osp.abspath(show_dir),
            frames_per_domain=show_frames,
            interval=show_interval)
    if export_adapted:
        cfg.custom_hooks.append(
            dict(
                type='AdaptedModelExportHook',
                every_domain=export_adapted == 'every-domain'))
    if progress:
        cfg.custom_hooks.append(dict(type='StreamProgressHook'))
    return cfg


def build_runner(cfg: Config) -> Runner:
    """The runner of a TTA config, its adaptation settings checked."""
    adaptation_config(cfg, cfg.filename or 'the config')
    return Runner.from_cfg(cfg)


def find_hook(runner: Runner, hook_type: Type[HookT]) -> HookT:
    """The hook of ``hook_type`` among the runner's hooks.

    Raises:
        KeyError: The runner has none.
    """
    for hook in runner.hooks:
        if isinstance(hook, hook_type):
            return hook
    raise KeyError(f'the runner has no {hook_type.__name__}; hooks: '
                   f'{[type(h).__name__ for h in runner.hooks]}')
