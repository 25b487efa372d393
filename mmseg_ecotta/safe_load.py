"""Load ``.pth`` files without running code; write ours so they need nothing.

A ``.pth`` file is a pickle, and unpickling calls whatever functions the
pickle names: a checkpoint from a forum post or a ``tta_state.pth`` planted
in a shared work dir can run a shell command. The trust model:

- **By default** every file (checkpoints through mmengine's loader, for
  every scheme: local paths, ``https://``, ``open-mmlab://`` ...;
  ``tta_state.pth``, Fisher files, exported and published models) is read
  with torch's restricted unpickler (``torch.load(weights_only=True)``),
  which builds tensors, numbers, strings and containers and refuses any
  other global *before* calling it. Checkpoints additionally admit
  :func:`checkpoint_globals`: what mmengine's runner and mmseg's released
  checkpoints pickle beyond that (numpy arrays, dtypes and scalars of
  plain numeric and bool dtypes, and mmengine's ``HistoryBuffer``), none
  of which can run code. numpy values are rebuilt by stand-ins that check
  the dtype before numpy sees the bytes: an object or structured dtype
  would make numpy read bytes of the file as object pointers.
- **Anything else** raises :class:`UnsafeFileError`, naming the file, the
  first global torch refused and the opt-in; a file torch cannot read at
  all (not a torch file, cut short) raises ``ValueError`` naming it.
- **Checkpoint weights must be finite**: a NaN or inf in the
  ``state_dict`` raises ``ValueError`` naming the first such tensor,
  unless the user opted out (``--allow-nonfinite``,
  ``allow_nonfinite = True`` in a config; :func:`allow_nonfinite`).
- **The opt-in** (``--unsafe-load`` on the tools, ``unsafe_load = True`` in
  a config, read by the tools' ``load_config`` and, for mmseg's own
  ``tools/test.py``, by ``TestTimeAdaptationHook``) makes this process
  unpickle every file in full, as torch did before 2.6: for files one
  trusts. It is logged as a warning when enabled and at every file loaded
  that way, naming where it was enabled first (the command line or the
  config).

What we write goes through :func:`save_plain`, which refuses anything but
plain data, so our own files never need the allow-list.
"""
import logging
import pickle
import re
from collections import OrderedDict
from typing import IO, Any, Callable, Dict, List, Optional, Tuple, Union

import numpy as np
import torch
from mmengine.logging import print_log

try:
    from numpy._core.multiarray import scalar as numpy_scalar
except ImportError:  # numpy < 2
    from numpy.core.multiarray import scalar as numpy_scalar

OPT_IN = ('--unsafe-load on the tool (or unsafe_load = True in the config) '
          'if you trust the file')

NONFINITE_OPT_OUT = ('--allow-nonfinite on the tool (or allow_nonfinite = '
                     'True in the config) to load it anyway')

# Who enabled full unpickling for this process (None: nobody). Process-wide
# because mmengine calls its checkpoint loaders with a path only.
_unsafe_load_source: Optional[str] = None
# Who allowed checkpoints with non-finite weights (None: nobody).
_nonfinite_source: Optional[str] = None


class UnsafeFileError(ValueError):
    """A file needs more than the safe unpickler to load."""


def allow_unsafe_load(source: str) -> None:
    """Unpickle every file of this process in full (the opt-in).

    Args:
        source (str): What enabled it, for the logs, e.g.
            ``'--unsafe-load'``.
    """
    global _unsafe_load_source
    # The first source stays: the tools pass --unsafe-load on as
    # ``unsafe_load = True`` in the config, which the TTA hook reads again.
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


def allow_nonfinite(source: str) -> None:
    """Load checkpoints whose weights hold NaN or inf (the opt-out).

    Args:
        source (str): What allowed it, for the logs, e.g.
            ``'--allow-nonfinite'``.
    """
    global _nonfinite_source
    if _nonfinite_source is None:
        print_log(
            f'{source}: checkpoints with NaN or inf weights will be loaded',
            logger='current',
            level=logging.WARNING)
        _nonfinite_source = source


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


# numpy dtype kinds a file may hold: bool, signed and unsigned integers,
# floating point and complex numbers. Object, structured and sub-array
# dtypes are refused: numpy would take bytes of the file for pointers.
PLAIN_NUMPY_KINDS = 'biufc'


def _refuse_numpy(what: str) -> pickle.UnpicklingError:
    return pickle.UnpicklingError(
        f'{what} (numpy values are admitted with plain numeric and bool '
        'dtypes only)')


def _plain_dtype(dtype: np.dtype) -> np.dtype:
    """``dtype`` if it is a plain numeric or bool dtype; raise otherwise."""
    if (dtype.kind not in PLAIN_NUMPY_KINDS or dtype.fields is not None
            or dtype.subdtype is not None or dtype.hasobject):
        raise _refuse_numpy(f'numpy dtype {str(dtype)!r}')
    return dtype


class NumpyDtypeStandIn:
    """What ``numpy.dtype`` unpickles to: a checked dtype, in ``dtype``.

    numpy pickles a dtype as ``numpy.dtype('f8', False, True)`` and then
    sets its state (byte order, fields, flags). numpy would apply any state
    to the dtype, object fields included; this applies the byte order of a
    plain dtype only, and the real dtype never reaches the pickle.
    """

    def __init__(self, spec: Any, align: Any = False, copy: Any = False):
        if not isinstance(spec, str):
            raise _refuse_numpy(f'numpy dtype {spec!r:.60}')
        try:
            dtype = np.dtype(spec)
        except TypeError as e:
            raise _refuse_numpy(f'numpy dtype {spec!r:.60}') from e
        self.dtype = _plain_dtype(dtype)

    def __setstate__(self, state: Any) -> None:
        # (version, byteorder, subarray, names, fields, itemsize,
        # alignment, flags): a plain dtype has no sub-array, names or
        # fields, and no flags.
        if not (isinstance(state, tuple) and len(state) == 8
                and state[1] in ('<', '>', '|', '=')
                and all(v is None for v in state[2:5]) and state[7] == 0):
            raise _refuse_numpy(
                f'numpy dtype {str(self.dtype)!r} with the state '
                f'{state!r:.80}')
        if state[1] in ('<', '>'):
            self.dtype = self.dtype.newbyteorder(state[1])


class NumpyArrayStandIn:
    """What ``numpy.ndarray`` unpickles to; the checked array in ``array``.

    numpy pickles an array as ``_reconstruct(numpy.ndarray, (0,), b'b')``
    and then sets its state (shape, dtype, raw bytes); the state is
    checked here, and only then given to numpy.
    """

    array: Optional[np.ndarray] = None

    def __setstate__(self, state: Any) -> None:
        if not (isinstance(state, tuple) and len(state) == 5 and isinstance(
                state[2], NumpyDtypeStandIn) and isinstance(state[4], bytes)):
            raise _refuse_numpy(f'a numpy array with the state {state!r:.80}')
        version, shape, dtype, fortran, data = state
        array = np.ndarray.__new__(np.ndarray, (0, ), 'b')
        try:
            array.__setstate__(
                (version, shape, _plain_dtype(dtype.dtype), fortran, data))
        except (TypeError, ValueError) as e:
            raise _refuse_numpy(f'a malformed numpy array ({e})') from e
        self.array = array


def _numpy_reconstruct(cls: Any, shape: Any,
                       typecode: Any) -> NumpyArrayStandIn:
    """Stand-in for numpy's ``_reconstruct``: plain arrays only."""
    if cls is not NumpyArrayStandIn:
        raise _refuse_numpy(f'_reconstruct of {cls!r:.60}')
    return NumpyArrayStandIn()


def _numpy_scalar(dtype: Any, data: Any = None) -> np.generic:
    """Stand-in for numpy's ``scalar``: plain numbers only."""
    if not isinstance(dtype, NumpyDtypeStandIn) or not isinstance(
            data, bytes) or len(data) != dtype.dtype.itemsize:
        raise _refuse_numpy(f'a numpy scalar of {dtype!r:.60}')
    return numpy_scalar(_plain_dtype(dtype.dtype), data)


def resolve_numpy(obj: Any) -> Any:
    """``obj`` with the numpy stand-ins replaced by what they hold.

    Walks dicts, lists, tuples and ``HistoryBuffer`` attributes (where
    mmengine keeps its arrays), in place where the container is mutable.
    """
    from mmengine.logging import HistoryBuffer
    seen = set()

    def resolve(value: Any) -> Any:
        if isinstance(value, NumpyArrayStandIn):
            if value.array is None:
                raise ValueError('a numpy array without its data')
            return value.array
        if isinstance(value, NumpyDtypeStandIn):
            return value.dtype
        if isinstance(value, torch.Tensor) or id(value) in seen:
            return value
        seen.add(id(value))
        if isinstance(value, dict):
            for key, item in value.items():
                value[key] = resolve(item)
        elif isinstance(value, list):
            value[:] = [resolve(item) for item in value]
        elif isinstance(value, tuple):
            return tuple(resolve(item) for item in value)
        elif isinstance(value, HistoryBuffer):
            resolve(vars(value))
        return value

    return resolve(obj)


def checkpoint_globals() -> List[Union[Callable, Tuple[Callable, str]]]:
    """What checkpoints may pickle beyond tensors, numbers and containers.

    mmengine's runner writes a ``HistoryBuffer`` per logged scalar (numpy
    arrays inside, statistics methods through ``getattr``) and numpy
    scalars into ``message_hub``; mmseg's released checkpoints may hold
    numpy values in ``meta``. numpy's names are mapped to stand-ins that
    admit plain numeric and bool dtypes only (:class:`NumpyDtypeStandIn`,
    :class:`NumpyArrayStandIn`; :func:`resolve_numpy` swaps in the real
    values after loading), under both their ``numpy.core`` (numpy 1) and
    ``numpy._core`` (numpy 2) names. None of these can call arbitrary
    code: they rebuild arrays, dtypes and scalars from bytes.

    Returns:
        list: Entries for ``torch.serialization.safe_globals``.
    """
    from mmengine.logging import HistoryBuffer
    entries = [
        (NumpyArrayStandIn, 'numpy.ndarray'),
        (NumpyDtypeStandIn, 'numpy.dtype'),
        (HistoryBuffer, 'mmengine.logging.history_buffer.HistoryBuffer'),
        (_history_buffer_statistic, 'builtins.getattr'),
    ]
    for core in ('numpy.core', 'numpy._core'):
        entries += [(_numpy_reconstruct, f'{core}.multiarray._reconstruct'),
                    (_numpy_scalar, f'{core}.multiarray.scalar')]
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
        ValueError: torch cannot read the file (not a torch file, a zip
            without its pickle, cut short); the message names it.
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
    except (RuntimeError, EOFError, ValueError, TypeError, KeyError,
            IndexError, AttributeError) as e:
        # torch's own words for a zip that is not a torch file, one without
        # data.pkl or a legacy file cut short: raw, and without the path.
        reason = str(e).strip().splitlines()[0] if str(e).strip() else (
            type(e).__name__)
        raise ValueError(
            f'{what} {file!r} is not a readable PyTorch file ({reason}): '
            'it is corrupt, cut short or not a torch.save file; copy or '
            'download it again, or pass another file') from e


def load_checkpoint_file(filename: str, map_location: Any = 'cpu') -> Any:
    """Load a checkpoint with :func:`checkpoint_globals` admitted.

    Returns:
        dict: The checkpoint: a dict, its weights (``state_dict``, or the
        dict itself as mmengine reads it) a dict of finite tensors.

    Raises:
        UnsafeFileError: See :func:`load_file`.
        ValueError: The file is unreadable (see :func:`load_file`), holds
            no dict of weights, or holds a NaN or inf weight (unless
            :func:`allow_nonfinite` was called).
    """
    ckpt = load_file(filename, 'checkpoint', map_location,
                     checkpoint_globals())
    try:
        ckpt = resolve_numpy(ckpt)
    except ValueError as e:
        raise ValueError(f'checkpoint {filename!r} is malformed: {e}') from e
    state_dict = ckpt.get('state_dict', ckpt) if isinstance(ckpt,
                                                            dict) else ckpt
    if not isinstance(state_dict, dict):
        raise ValueError(
            f'checkpoint {filename!r} holds a {type(state_dict).__name__}, '
            "not weights (a dict of tensors, or a dict with a 'state_dict' "
            'one): pass a checkpoint saved from a model')
    if _nonfinite_source is None:
        check_finite_weights(state_dict, filename)
    return ckpt


def check_finite_weights(state_dict: Dict[str, Any], filename: str) -> None:
    """Raise if a floating point tensor of ``state_dict`` is not finite.

    A NaN or inf weight makes every prediction garbage, and a method that
    resets on collapse would reset to it again and again.

    Raises:
        ValueError: Names the first such tensor and the opt-out.
    """
    for name, value in state_dict.items():
        if isinstance(value, torch.Tensor) and (value.is_floating_point()
                                                or value.is_complex()):
            bad = value.numel() - int(torch.isfinite(value).sum())
            if bad:
                raise ValueError(
                    f'checkpoint {filename!r} holds non-finite weights: '
                    f'{name!r} has {bad} NaN or inf of its {value.numel()} '
                    'values (the model it came from diverged); pass another '
                    f'checkpoint, or {NONFINITE_OPT_OUT}')


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
