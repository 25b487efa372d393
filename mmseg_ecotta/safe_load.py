"""Load ``.pth`` files without running code; write ours so they need nothing.

A ``.pth`` file is a pickle, and unpickling calls whatever functions the
pickle names: a checkpoint from a forum post or a ``tta_state.pth`` planted
in a shared work dir can run a shell command. The trust model:

- **By default** every file (checkpoints through mmengine's loader,
  ``tta_state.pth``, Fisher files, exported and published models) is read
  with torch's restricted unpickler (``torch.load(weights_only=True)``),
  which builds tensors, numbers, strings and containers and refuses any
  other global *before* calling it. Checkpoints additionally admit
  :func:`checkpoint_globals`: what mmengine's runner and mmseg's released
  checkpoints pickle beyond that (numpy arrays, dtypes and scalars, and
  mmengine's ``HistoryBuffer``), none of which can run code.
- **Anything else** raises :class:`UnsafeFileError`, naming the file, the
  first global torch refused and the opt-in.
- **The opt-in** (``--unsafe-load`` on the tools, ``unsafe_load = True`` in
  a config, read by the tools' ``load_config`` and, for mmseg's own
  ``tools/test.py``, by ``TestTimeAdaptationHook``) makes this process
  unpickle every file in full, as torch did before 2.6: for files one
  trusts. It is logged as a warning when enabled and at every file loaded
  that way.

What we write goes through :func:`save_plain`, which refuses anything but
plain data, so our own files never need the allow-list.
"""
import logging
import pickle
import re
from collections import OrderedDict
from typing import IO, Any, Callable, List, Optional, Tuple, Union

import torch
from mmengine.logging import print_log

OPT_IN = ('--unsafe-load on the tool (or unsafe_load = True in the config) '
          'if you trust the file')

# Who enabled full unpickling for this process (None: nobody). Process-wide
# because mmengine calls its checkpoint loaders with a path only.
_unsafe_load_source: Optional[str] = None


class UnsafeFileError(ValueError):
    """A file needs more than the safe unpickler to load."""


def allow_unsafe_load(source: str) -> None:
    """Unpickle every file of this process in full (the opt-in).

    Args:
        source (str): What enabled it, for the logs, e.g.
            ``'--unsafe-load'``.
    """
    global _unsafe_load_source
    if _unsafe_load_source is None:
        print_log(
            f'{source}: checkpoints, state and Fisher files will be '
            'unpickled in full, which runs any code they hold; use it only '
            'for files you trust',
            logger='current',
            level=logging.WARNING)
    _unsafe_load_source = source


def unsafe_load_allowed() -> bool:
    """Whether :func:`allow_unsafe_load` was called in this process."""
    return _unsafe_load_source is not None


# mmengine's ``HistoryBuffer._set_default_statistics``.
HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')


def _history_buffer_statistic(owner: Any, name: str) -> Callable:
    """Stand-in for ``getattr`` in checkpoint pickles.

    A ``HistoryBuffer`` pickles its statistics methods as
    ``getattr(HistoryBuffer, 'mean')``; this admits exactly those and
    nothing else ``getattr`` could reach.
    """
    from mmengine.logging import HistoryBuffer
    if owner is HistoryBuffer and name in HISTORY_BUFFER_STATISTICS:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'getattr({owner!r}, {name!r}) (getattr is admitted for the '
        f'HistoryBuffer statistics {HISTORY_BUFFER_STATISTICS} only)')


def checkpoint_globals() -> List[Union[Callable, Tuple[Callable, str]]]:
    """What checkpoints may pickle beyond tensors, numbers and containers.

    mmengine's runner writes a ``HistoryBuffer`` per logged scalar (numpy
    arrays inside, statistics methods through ``getattr``) and numpy
    scalars into ``message_hub``; mmseg's released checkpoints may hold
    numpy values in ``meta``. numpy's pickle names moved from
    ``numpy.core`` (numpy 1) to ``numpy._core`` (numpy 2); both are mapped
    to the installed functions. None of these can call arbitrary code:
    they rebuild arrays, dtypes and scalars from bytes.

    Returns:
        list: Entries for ``torch.serialization.safe_globals``.
    """
    import numpy as np
    from mmengine.logging import HistoryBuffer
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray
    entries = [
        (np.ndarray, 'numpy.ndarray'),
        (np.dtype, 'numpy.dtype'),
        (HistoryBuffer, 'mmengine.logging.history_buffer.HistoryBuffer'),
        (_history_buffer_statistic, 'builtins.getattr'),
    ]
    for core in ('numpy.core', 'numpy._core'):
        entries += [(multiarray._reconstruct,
                     f'{core}.multiarray._reconstruct'),
                    (multiarray.scalar, f'{core}.multiarray.scalar')]
    # ``numpy.dtype(...)`` returns an instance of a per-type subclass
    # (``numpy.dtypes.Float64DType``) whose state is then set: admit those.
    entries += list({type(np.dtype(c)) for c in np.typecodes['All']})
    return entries


def refused_global(error: Exception) -> str:
    """What torch's safe unpickler refused first, from its message.

    Returns:
        str: The global, e.g. ``'posix.system'``, or torch's reason when
        it refused something other than a global.
    """
    message = str(error)
    found = re.search(r'GLOBAL ([\w.]+)', message)
    if found:
        name = found.group(1)
        # torch drops the ``builtins.`` prefix from the names it reports.
        return name if '.' in name else f'builtins.{name}'
    reason = message.split('WeightsUnpickler error:')[-1]
    boilerplate = ('Weights only load failed', 'Please file an issue',
                   'Check the documentation')
    lines = [
        line.strip() for line in reason.splitlines()
        if line.strip() and not line.startswith(boilerplate)
    ]
    return lines[0] if lines else message


def load_file(file: str,
              what: str,
              map_location: Any = 'cpu',
              allowed: Optional[list] = None) -> Any:
    """``torch.load`` a file safely, or in full after the opt-in.

    Args:
        file (str): The file.
        what (str): What it is, for messages, e.g. ``'Fisher file'``.
        map_location (Any): As for ``torch.load``. Defaults to ``'cpu'``.
        allowed (list, optional): Globals admitted beyond torch's own, as
            for ``torch.serialization.safe_globals``. Defaults to none.

    Returns:
        Any: The unpickled content.

    Raises:
        UnsafeFileError: The file pickles a global outside torch's and
            ``allowed``; nothing of the file was executed.
    """
    if _unsafe_load_source is not None:
        print_log(
            f'loading {what} {file} with full unpickling '
            f'({_unsafe_load_source}): any code it holds runs',
            logger='current',
            level=logging.WARNING)
        return torch.load(file, map_location=map_location, weights_only=False)
    try:
        with torch.serialization.safe_globals(allowed or []):
            return torch.load(
                file, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise UnsafeFileError(
            f'{what} {file!r} was not loaded: it pickles '
            f'{refused_global(e)}, which is not plain data (tensors, numbers, '
            'strings, containers) and could run code when unpickled; it was '
            f'refused before running anything. Pass {OPT_IN}.') from e


def load_checkpoint_file(filename: str, map_location: Any = 'cpu') -> Any:
    """Load a checkpoint with :func:`checkpoint_globals` admitted.

    Raises:
        UnsafeFileError: See :func:`load_file`.
    """
    return load_file(filename, 'checkpoint', map_location,
                     checkpoint_globals())


PLAIN_LEAVES = (torch.Tensor, torch.nn.Parameter, torch.Size, torch.dtype,
                torch.device, int, float, bool, str, bytes, type(None))
PLAIN_CONTAINERS = (dict, OrderedDict, list, tuple)


def check_plain(obj: Any, where: str = 'the saved object') -> None:
    """Raise unless ``obj`` is plain data the safe unpickler rebuilds.

    Plain: tensors, ``torch.Size``/``dtype``/``device``, numbers, strings,
    bytes, None, and dicts, lists and tuples of those (exact types:
    subclasses such as mmengine's ``ConfigDict`` pickle their class).

    Raises:
        TypeError: Names the path of the first other value and its type.
    """
    if type(obj) in PLAIN_LEAVES:
        return
    if type(obj) not in PLAIN_CONTAINERS:
        raise TypeError(
            f'{where} is a {type(obj).__module__}.{type(obj).__qualname__}, '
            'not plain data: convert it to tensors, numbers, strings, '
            'lists and dicts before saving, so the file loads with '
            'weights_only=True')
    if isinstance(obj, dict):
        for key, value in obj.items():
            check_plain(key, f'a key of {where}')
            check_plain(value, f'{where}[{key!r}]')
    else:
        for i, value in enumerate(obj):
            check_plain(value, f'{where}[{i}]')


def save_plain(obj: Any, file: Union[str, IO[bytes]]) -> None:
    """``torch.save`` after :func:`check_plain`: loadable without trust."""
    check_plain(obj)
    torch.save(obj, file)
