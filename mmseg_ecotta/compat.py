"""Compatibility shims for the pinned OpenMMLab stack.

Three known breakages of torch 2.13 + mmengine 0.10.7 + mmsegmentation 1.2.2
(+ mmcv-lite 2.1.0) are handled here. The first two are activated only when
the breakage is actually present, so the same code runs unchanged on the
full, compiled mmcv and on older setuptools; the third is always on, since
it is also how the plugin decides what a checkpoint may contain:

1. ``mmcv.ops`` on mmcv-lite: mmseg imports ``mmcv.ops`` at module level in
   four modules (e.g. ``mmseg/utils/mask_classification.py``), so
   ``import mmseg.models`` fails with ``No module named 'mmcv._ext'``. When
   the compiled extension is missing we register a placeholder
   ``mmcv.ops`` module whose attributes are stubs that raise a clear error
   *when used*. Nothing the plugin relies on needs a compiled op.
2. ``pkg_resources`` is gone from setuptools >= 81, but mmengine's
   ``is_installed``/``get_installed_path`` (behind the ``mmseg::`` base
   config syntax) import it. When it is missing we register
   :mod:`mmseg_ecotta._pkg_resources`, a minimal stand-in backed by
   :mod:`importlib.metadata`.
3. torch >= 2.6 loads checkpoints with ``weights_only=True`` by default and
   mmengine 0.10.7 does not pass the argument, so checkpoints written by
   mmengine's own runner (which pickle a ``HistoryBuffer`` and numpy
   values) fail to load; its ``https://``, ``open-mmlab://``,
   ``torchvision://`` and ``mmcls://`` loaders go through torch's hub
   loader, which unpickles with ``weights_only=False`` and so runs any code
   a file holds. We register loaders for mmengine, for local paths and for
   each of these schemes, that fetch a remote file to torch's hub cache
   (``$TORCH_HOME/hub/checkpoints``, where torch's hub loader keeps it) and
   load every file the same way: ``weights_only=True`` admitting exactly
   what checkpoints need
   (:func:`mmseg_ecotta.safe_load.checkpoint_globals`); anything else is
   refused before it runs, unless the user opted in to full unpickling
   (``--unsafe-load``, ``unsafe_load = True``; see
   :mod:`mmseg_ecotta.safe_load`). ``pavi://`` and ``s3://`` keep
   mmengine's loaders, which call ``torch.load`` with its safe default
   (no allow-list, no opt-in). ``torch.load`` itself is untouched.

:func:`apply_all` is idempotent and is run on ``import mmseg_ecotta``.
"""
import importlib.util
import os
import os.path as osp
import sys
import types
from typing import Any
from urllib.parse import urlparse

MMCV_OPS_HINT = ('the compiled mmcv ops are not installed (mmcv-lite). '
                 'mmseg-ecotta does not need them; if your model does, '
                 'install the full mmcv: pip install "setuptools<70" && '
                 'MMCV_WITH_OPS=1 pip install --no-build-isolation '
                 'mmcv==2.1.0')


def _missing_op(name: str) -> type:
    """Build a placeholder for ``mmcv.ops.<name>`` that fails when used."""

    def fail(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError(f'mmcv.ops.{name} is unavailable: {MMCV_OPS_HINT}')

    # A class works both for ``ops.Foo(...)`` layers and ``ops.foo(...)``
    # functions, and for ``issubclass`` checks done at import time.
    return type(name, (), {'__init__': fail, '__module__': 'mmcv.ops'})


def mmcv_ops_missing() -> bool:
    """Whether mmcv is installed without its compiled extension."""
    return (importlib.util.find_spec('mmcv') is not None
            and importlib.util.find_spec('mmcv._ext') is None)


def patch_mmcv_ops() -> bool:
    """Register a placeholder ``mmcv.ops`` if the compiled ops are missing.

    Returns:
        bool: Whether the placeholder was installed.
    """
    if not mmcv_ops_missing():
        return False
    existing = sys.modules.get('mmcv.ops')
    if getattr(existing, '__mmseg_ecotta_stub__', False):
        return True
    ops = types.ModuleType('mmcv.ops', MMCV_OPS_HINT)
    ops.__mmseg_ecotta_stub__ = True
    ops.__path__ = []  # a package, so ``import mmcv.ops.foo`` fails cleanly
    ops.__getattr__ = _stub_getattr  # type: ignore[attr-defined]
    sys.modules['mmcv.ops'] = ops
    import mmcv
    mmcv.ops = ops
    return True


def _stub_getattr(name: str) -> Any:
    if name.startswith('__'):
        raise AttributeError(name)
    return _missing_op(name)


def patch_pkg_resources() -> bool:
    """Provide ``pkg_resources`` where setuptools no longer ships it.

    Returns:
        bool: Whether the stand-in was installed.
    """
    if 'pkg_resources' in sys.modules:
        return sys.modules['pkg_resources'].__name__ != 'pkg_resources'
    if importlib.util.find_spec('pkg_resources') is not None:
        return False
    from . import _pkg_resources
    sys.modules['pkg_resources'] = _pkg_resources
    return True


def load_local_checkpoint(filename: str, map_location: Any) -> Any:
    """mmengine's local-file loader, safe by default.

    Raises:
        FileNotFoundError: ``filename`` does not exist.
        mmseg_ecotta.safe_load.UnsafeFileError: The checkpoint pickles
            more than :func:`~mmseg_ecotta.safe_load.checkpoint_globals`
            admits and the user did not opt in.
    """
    from .safe_load import load_checkpoint_file
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(
            f'checkpoint {filename!r} does not exist: check the path '
            '(CHECKPOINT argument or load_from in the config)')
    from .utils.files import check_torch_file  # mmseg loads after shims
    check_torch_file(
        filename, 'checkpoint', 'download or copy it again (an interrupted '
        'transfer leaves a short file), or pass another checkpoint')
    return load_checkpoint_file(filename, map_location)


def cached_download(url: str) -> str:
    """The local copy of ``url``, downloaded to torch's hub cache if missing.

    The same file torch's ``load_state_dict_from_url`` (mmengine's
    ``https://`` loader) uses: ``$TORCH_HOME/hub/checkpoints/<file name>``.
    In a distributed run rank 0 downloads and the others wait.
    """
    from mmengine.dist import barrier, get_dist_info
    from torch.hub import download_url_to_file, get_dir
    cached = osp.join(get_dir(), 'checkpoints',
                      osp.basename(urlparse(url).path))
    rank, world_size = get_dist_info()
    if rank == 0 and not osp.isfile(cached):
        os.makedirs(osp.dirname(cached), exist_ok=True)
        download_url_to_file(url, cached, progress=False)
    if world_size > 1:
        barrier()
    return cached


def load_url_checkpoint(url: str, map_location: Any) -> Any:
    """mmengine's ``https://`` loader, safe: fetch, then load as local."""
    return load_local_checkpoint(cached_download(url), map_location)


def load_openmmlab_checkpoint(filename: str, map_location: Any) -> Any:
    """mmengine's ``open-mmlab://`` loader, safe (same name lookup)."""
    from mmengine.runner.checkpoint import (_get_mmengine_home,
                                            get_deprecated_model_names,
                                            get_external_models)
    name = filename.split('://', 1)[1]
    name = get_deprecated_model_names().get(name, name)
    url = get_external_models()[name]
    if url.startswith(('http://', 'https://')):
        return load_url_checkpoint(url, map_location)
    return load_local_checkpoint(
        osp.join(_get_mmengine_home(), url), map_location)


def load_torchvision_checkpoint(filename: str, map_location: Any) -> Any:
    """mmengine's ``torchvision://`` loader, safe (same name lookup)."""
    from mmengine.runner.checkpoint import get_torchvision_models
    return load_url_checkpoint(
        get_torchvision_models()[filename.split('://', 1)[1]], map_location)


def load_mmcls_checkpoint(filename: str, map_location: Any) -> Any:
    """mmengine's ``mmcls://`` loader, safe (same name lookup)."""
    from mmengine.runner.checkpoint import (_process_mmcls_checkpoint,
                                            get_mmcls_models)
    return _process_mmcls_checkpoint(
        load_url_checkpoint(get_mmcls_models()[filename.split('://', 1)[1]],
                            map_location))


# mmengine's checkpoint schemes and our loaders for them.
SAFE_LOADERS = {
    '': load_local_checkpoint,
    ('http://', 'https://'): load_url_checkpoint,
    ('open-mmlab://', 'openmmlab://'): load_openmmlab_checkpoint,
    ('modelzoo://', 'torchvision://'): load_torchvision_checkpoint,
    'mmcls://': load_mmcls_checkpoint,
}


def patch_torch_load() -> bool:
    """Make mmengine load checkpoints safely, for every scheme it fetches.

    Uses mmengine's public ``CheckpointLoader.register_scheme`` extension
    point to replace the loaders of local paths and of the schemes in
    :data:`SAFE_LOADERS`.

    Returns:
        bool: Whether the loaders were replaced (always).
    """
    from mmengine.runner.checkpoint import CheckpointLoader
    for prefixes, loader in SAFE_LOADERS.items():
        CheckpointLoader.register_scheme(
            prefixes=prefixes, loader=loader, force=True)
    return True


def apply_all() -> dict:
    """Apply every shim that the installed stack needs.

    Returns:
        dict: Which shims were active, for logs and tests.
    """
    return dict(
        mmcv_ops=patch_mmcv_ops(),
        pkg_resources=patch_pkg_resources(),
        torch_load=patch_torch_load())
