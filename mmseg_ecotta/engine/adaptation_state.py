"""Resumable adaptation: save and restore a continual stream mid-way.

A continual stream is long (CoTTA's protocol is 16,000 adaptation steps on
ACDC) and its state is the whole history: killing a run must not cost the
hours before it. :class:`~mmseg_ecotta.engine.TestTimeAdaptationHook`
writes one file, ``WORK_DIR/tta_state.pth``, every ``checkpoint_interval``
steps and at every domain boundary, holding everything the rest of the
stream depends on:

- the method's state (:meth:`~mmseg_ecotta.tta.TTAMethod.state_dict`:
  adapted parameters, BN statistics, optimizer state, a teacher or moving
  average where the method has one), its counters and accumulated time;
- the RNG states (torch, CUDA, numpy, ``random``), so stochastic methods
  (CoTTA's restore) draw the same numbers after a resume;
- the stream position (batches consumed) and the current (round, domain);
- every metric's accumulated ``results``.

It is written atomically (temp file in the same folder, fsync, rename), so
a kill at any instant leaves the previous file intact; the temporary file a
kill leaves behind is removed when the next run starts
(:func:`remove_stale_temporaries`). It holds plain data only (numpy values
as tensors), so it loads with torch's safe unpickler: a planted state file
cannot run code (:mod:`mmseg_ecotta.safe_load`). On resume the test
loop's dataloader is replaced by one over the same dataset that starts at
the saved position (:func:`dataloader_from`).
"""
import glob
import json
import os
import os.path as osp
import random
import tempfile
from typing import Any, Dict, Iterator, List, Optional

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from ..safe_load import load_file, save_plain

STATE_FILE = 'tta_state.pth'
# Bumped when the layout of the state file changes (2: plain data only).
STATE_VERSION = 2


def capture_rng_state() -> Dict[str, Any]:
    """The global RNG states of torch, CUDA, numpy and ``random``.

    As plain data: numpy's Mersenne Twister key (uint32) is kept as an
    int64 tensor, ``random``'s state is a tuple of ints.
    """
    name, key, pos, has_gauss, cached_gaussian = np.random.get_state()
    state = dict(
        torch=torch.get_rng_state(),
        numpy=dict(
            name=name,
            key=torch.from_numpy(key.astype(np.int64)),
            pos=int(pos),
            has_gauss=int(has_gauss),
            cached_gaussian=float(cached_gaussian)),
        python=random.getstate())
    if torch.cuda.is_available():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Dict[str, Any]) -> None:
    """Set the global RNG states saved by :func:`capture_rng_state`."""
    torch.set_rng_state(state['torch'])
    numpy = state['numpy']
    np.random.set_state(
        (numpy['name'], numpy['key'].numpy().astype(np.uint32), numpy['pos'],
         numpy['has_gauss'], numpy['cached_gaussian']))
    random.setstate(state['python'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


def save_state_atomic(state: Dict[str, Any], path: str) -> None:
    """``torch.save`` to ``path`` so that a kill never leaves it broken.

    The state goes to a temporary file in the same folder (same file
    system, so the rename is atomic), is flushed to disk, and replaces
    ``path`` in one ``os.replace``: readers see the old or the new file,
    never a partial one.

    Raises:
        TypeError: ``state`` holds more than plain data
            (:func:`~mmseg_ecotta.safe_load.check_plain`).
    """
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f'.{osp.basename(path)}.', suffix='.tmp', dir=folder)
    try:
        with os.fdopen(fd, 'wb') as f:
            save_plain(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
    # Persist the rename itself (POSIX; directories cannot be opened on
    # Windows, where os.replace is already durable enough).
    if hasattr(os, 'O_DIRECTORY'):
        dir_fd = os.open(folder, os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def remove_stale_temporaries(path: str) -> List[str]:
    """Delete the temporary files interrupted writes of ``path`` left.

    Only names of :func:`save_state_atomic`'s own pattern
    (``.tta_state.pth.*.tmp`` beside ``tta_state.pth``) are touched.

    Returns:
        list[str]: The files removed.
    """
    folder, name = osp.split(osp.abspath(path))
    stale = glob.glob(
        osp.join(glob.escape(folder), f'.{glob.escape(name)}.*.tmp'))
    for tmp in stale:
        os.remove(tmp)
    return stale


def run_fingerprint(model_cfg: Any, method_cfg: dict, episodic: bool,
                    stream_length: int, batch_size: int) -> Dict[str, str]:
    """What a state file must match to be resumed by this run.

    Values are canonical JSON strings, so configs compare by content.
    """

    def canonical(value: Any) -> str:
        return json.dumps(value, sort_keys=True, default=repr)

    return dict(
        model=canonical(model_cfg),
        method=canonical(method_cfg),
        episodic=canonical(episodic),
        stream_length=canonical(stream_length),
        batch_size=canonical(batch_size))


def load_state(path: str, fingerprint: Dict[str, str]) -> Dict[str, Any]:
    """Load a state file and refuse one written by a different run.

    Args:
        path (str): The state file (``WORK_DIR/tta_state.pth``).
        fingerprint (dict): :func:`run_fingerprint` of this run.

    Returns:
        dict: The saved state.

    Raises:
        FileNotFoundError: No state file at ``path``.
        ValueError: The file is not a state file, or was written by a run
            with another model, method, stream length or batch size.
        mmseg_ecotta.safe_load.UnsafeFileError: The file holds more than
            plain data (not written by us) and the user did not opt in.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'--resume: no adaptation state {path!r}; pass the --work-dir '
            'of the interrupted run, or run without --resume to start the '
            'stream from the beginning')
    state = load_file(path, 'adaptation state')
    if not isinstance(state, dict) or state.get('version') != STATE_VERSION:
        raise ValueError(
            f'{path!r} is not an adaptation state of this version '
            f'(version {STATE_VERSION}); delete it or run without --resume')
    saved = state['fingerprint']
    differ = [k for k in fingerprint if saved.get(k) != fingerprint[k]]
    if differ:
        details = '; '.join(f'{k}: saved {saved.get(k)} vs now '
                            f'{fingerprint[k]}' for k in differ)
        raise ValueError(
            f'{path!r} was written by a different run ({details}); resume '
            'with the same config, method and stream, or use another '
            '--work-dir to start afresh')
    return state


class SkipSampler(Sampler):
    """Yield the indices of ``sampler`` after the first ``skip`` ones.

    Skipping the *sampler's* order (not ``range``) keeps a resumed stream
    identical to the uninterrupted one whatever the order was.
    """

    def __init__(self, sampler: Sampler, skip: int) -> None:
        self.sampler = sampler
        self.skip = skip

    def __iter__(self) -> Iterator[int]:
        for i, index in enumerate(self.sampler):
            if i >= self.skip:
                yield index

    def __len__(self) -> int:
        return max(len(self.sampler) - self.skip, 0)


def dataloader_from(loader: DataLoader, batches: int) -> DataLoader:
    """The same stream as ``loader``, starting after ``batches`` batches.

    Same dataset, sampler order, batch size, collate function, workers and
    worker seeding; only the start differs. The loader gets its own
    ``torch.Generator``: creating a DataLoader iterator draws a base seed,
    and drawing it from the global RNG would shift every random number the
    method draws after a resume.

    Args:
        loader (DataLoader): The test loop's dataloader.
        batches (int): Batches already consumed.

    Returns:
        DataLoader: A loader yielding the remaining batches.
    """
    if loader.batch_size is None:
        raise ValueError('resuming needs a dataloader with a batch_size '
                         '(a custom batch_sampler cannot be skipped into)')
    return DataLoader(
        loader.dataset,
        batch_size=loader.batch_size,
        sampler=SkipSampler(loader.sampler, batches * loader.batch_size),
        num_workers=loader.num_workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
        drop_last=loader.drop_last,
        worker_init_fn=loader.worker_init_fn,
        generator=torch.Generator(),
        persistent_workers=loader.persistent_workers)


# Tags of numpy values stored as tensors in the state file.
NDARRAY, NUMPY_SCALAR = '__ndarray__', '__numpy_scalar__'


def _numpy_to_tensors(value: Any) -> Any:
    """``value`` with numpy arrays and scalars as tagged tensors."""
    if isinstance(value, (np.ndarray, np.generic)):
        tag = NDARRAY if isinstance(value, np.ndarray) else NUMPY_SCALAR
        return {tag: torch.from_numpy(np.array(value, order='C'))}
    if isinstance(value, (list, tuple)):
        return type(value)(map(_numpy_to_tensors, value))
    if isinstance(value, dict):
        return {k: _numpy_to_tensors(v) for k, v in value.items()}
    return value


def _tensors_to_numpy(value: Any) -> Any:
    """Undo :func:`_numpy_to_tensors`, bit for bit."""
    if isinstance(value, dict) and len(value) == 1 and (NDARRAY in value or
                                                        NUMPY_SCALAR in value):
        array = next(iter(value.values())).numpy()
        return array if NDARRAY in value else array[()]
    if isinstance(value, (list, tuple)):
        return type(value)(map(_tensors_to_numpy, value))
    if isinstance(value, dict):
        return {k: _tensors_to_numpy(v) for k, v in value.items()}
    return value


def metric_results(metrics: List[Any]) -> List[list]:
    """Copies of the accumulated ``results`` of each metric, in order.

    numpy values (``ContinualIoUMetric``'s areas) become tagged tensors,
    so the state file holds plain data only.
    """
    return [_numpy_to_tensors(list(m.results)) for m in metrics]


def restore_metric_results(metrics: List[Any],
                           results: Optional[List[list]]) -> None:
    """Put back what :func:`metric_results` saved."""
    if results is None:
        return
    if len(results) != len(metrics):
        raise ValueError(f'the state holds results of {len(results)} '
                         f'metrics, the test_evaluator has {len(metrics)}: '
                         'resume with the same test_evaluator')
    for metric, saved in zip(metrics, results):
        metric.results = _tensors_to_numpy(list(saved))
