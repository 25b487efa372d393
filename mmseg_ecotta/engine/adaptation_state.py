"""Resumable adaptation: save and restore a continual stream mid-way.

A continual stream is long (CoTTA's protocol is 16,000 adaptation steps on
ACDC) and its state is the whole history: killing a run must not cost the
hours before it. :class:`~mmseg_ecotta.engine.TestTimeAdaptationHook`
writes one file, ``WORK_DIR/tta_state.pth``, every ``checkpoint_interval``
steps and at every domain boundary, holding everything the rest of the
stream depends on:

- the method's state (:meth:`~mmseg_ecotta.tta.TTAMethod.state_dict`:
  adapted parameters, BN statistics, optimizer state, a teacher or moving
  average where the method has one, its counters and accumulated time);
- the RNG states (torch, CUDA, numpy, ``random``), so stochastic methods
  (CoTTA's restore) draw the same numbers after a resume;
- the stream position (batches and samples consumed) and the current
  (round, domain);
- every metric's accumulated ``results``;
- the run's fingerprint (:mod:`~mmseg_ecotta.engine.run_identity`): a
  state is resumed only by the same run, or by the same run with samples
  removed from the stream (resumed by sample identity).

It is written atomically (temp file in the same folder, fsync, rename), so
a kill at any instant leaves the previous file intact; the temporary file a
kill leaves behind is removed when the next run starts
(:func:`remove_stale_temporaries`). It holds plain data only (numpy values
as tensors), so it loads with torch's safe unpickler: a planted state file
cannot run code (:mod:`mmseg_ecotta.safe_load`). On resume the test
loop's dataloader is replaced by one over the same dataset that starts at
the saved position (:func:`dataloader_from`).

:class:`StreamCheckpoint` is the bookkeeping the hook delegates to: the
stream position, when a state is due, writing it and resuming from it.
"""
import os.path as osp
import random
from typing import Any, Dict, Iterator, List, Optional

import numpy as np
import torch
from mmengine.dist import get_world_size
from torch.utils.data import DataLoader, Sampler

from ..safe_load import load_file, save_plain
from ..tta import TTAMethod
from ..utils import atomic_write, check_torch_file, remove_stale_temporaries
from .run_identity import (fingerprint_differences, removed_samples,
                           resume_position, run_fingerprint)

STATE_FILE = 'tta_state.pth'
# Bumped when the layout of the state file changes (2: plain data only;
# 3: run identity and sample-level position; 4: the method's counters in
# its state_dict; 5: hook options and side-file hashes in the fingerprint).
STATE_VERSION = 5


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
    never a partial one (:func:`~mmseg_ecotta.utils.atomic_write`).

    Raises:
        TypeError: ``state`` holds more than plain data
            (:func:`~mmseg_ecotta.safe_load.check_plain`).
    """
    atomic_write(path, lambda f: save_plain(state, f))


def load_state(path: str, fingerprint: Dict[str, Any]) -> Dict[str, Any]:
    """Load a state file and refuse one written by a different run.

    Args:
        path (str): The state file (``WORK_DIR/tta_state.pth``).
        fingerprint (dict): This run's fingerprint
            (:func:`~mmseg_ecotta.engine.run_identity.run_fingerprint`).

    Returns:
        dict: The saved state.

    Raises:
        FileNotFoundError: No state file at ``path``.
        ValueError: The file is empty, truncated or not a state file, or
            was written by another run (the message names what differs).
        mmseg_ecotta.safe_load.UnsafeFileError: The file holds more than
            plain data (not written by us) and the user did not opt in.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'--resume: no adaptation state {path!r}; pass the --work-dir '
            'of the interrupted run, or run without --resume to start the '
            'stream from the beginning')
    check_torch_file(
        path, 'adaptation state', 'delete it and run without --resume to '
        'start the stream afresh (or restore the file from a backup)')
    state = load_file(path, 'adaptation state')
    if not isinstance(state, dict) or state.get('version') != STATE_VERSION:
        raise ValueError(
            f'{path!r} is not an adaptation state of this version '
            f'(version {STATE_VERSION}); delete it or run without --resume')
    if not isinstance(state.get('fingerprint'), dict):
        raise malformed_state(path, 'it holds no run fingerprint')
    differ = fingerprint_differences(state['fingerprint'], fingerprint)
    if differ:
        raise ValueError(
            f'{path!r} was written by a different run: {", ".join(differ)}. '
            'Resume with the same config, checkpoint and data, or give '
            'another --work-dir to start afresh')
    return state


def malformed_state(path: str, what: str) -> ValueError:
    """The error for a state file that is not what we write."""
    return ValueError(
        f'adaptation state {path!r} is malformed: {what}. It was not '
        'written by this package (or was edited): delete it and run '
        'without --resume to start the stream afresh')


# What a state holds beyond its version and fingerprint, and of what type.
STATE_FIELDS = dict(
    position=int,
    consumed=int,
    removed_samples=list,
    segment=(tuple, list),
    method=dict,
    rng=dict,
    metric_results=(list, type(None)))


def check_state(state: Dict[str, Any], path: str) -> None:
    """Raise unless ``state`` is laid out as we write it and fits its stream.

    The position must lie within the stream its own fingerprint
    describes, and the segment must be one of its (round, domain); a
    crafted state could otherwise end a run early with ``complete: true``.

    Raises:
        ValueError: Names the file and the first thing wrong.
    """
    for key, kind in STATE_FIELDS.items():
        if key not in state:
            raise malformed_state(path, f'it has no {key!r}')
        value = state[key]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise malformed_state(
                path, f'{key} is {value!r:.40} ({type(value).__name__})')
    saved = state['fingerprint']
    try:
        rounds, domains = int(saved['rounds']), list(saved['domains'])
        stream = rounds * sum(len(samples) for samples in saved['samples'])
    except (KeyError, TypeError, ValueError) as e:
        raise malformed_state(path, f'its fingerprint is incomplete ({e})')
    if not 0 <= state['consumed'] < stream or state['position'] < 0:
        raise malformed_state(
            path, f"position {state['position']}, {state['consumed']} "
            f'samples consumed, in a stream of {stream} samples')
    segment = state['segment']
    if not (len(segment) == 2 and isinstance(segment[0], int)
            and 0 <= segment[0] < rounds and segment[1] in domains):
        raise malformed_state(
            path, f'segment {segment!r:.40} is not a (round, domain) of '
            'its stream')


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


def dataloader_from(loader: DataLoader, samples: int) -> DataLoader:
    """The same stream as ``loader``, starting after ``samples`` samples.

    Same dataset, sampler order, batch size, collate function, workers and
    worker seeding; only the start differs. The loader gets its own
    ``torch.Generator``: creating a DataLoader iterator draws a base seed,
    and drawing it from the global RNG would shift every random number the
    method draws after a resume.

    Args:
        loader (DataLoader): The test loop's dataloader.
        samples (int): Samples already consumed.

    Returns:
        DataLoader: A loader yielding the remaining batches.
    """
    if loader.batch_size is None:
        raise ValueError('resuming needs a dataloader with a batch_size '
                         '(a custom batch_sampler cannot be skipped into)')
    return DataLoader(
        loader.dataset,
        batch_size=loader.batch_size,
        sampler=SkipSampler(loader.sampler, samples),
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


def check_sequential(loader: DataLoader) -> None:
    """Raise unless ``loader`` visits its dataset in order.

    Resuming by sample identity maps stream positions, which only a
    sequential sampler keeps (the continual protocol is sequential).
    """
    if list(loader.sampler) != list(range(len(loader.dataset))):
        raise ValueError(
            'samples were removed from the stream since the state was saved, '
            'and the test dataloader does not visit the stream in order '
            "(e.g. sampler=dict(type='DefaultSampler', shuffle=True)): "
            'resume with the samples restored, or start afresh in another '
            '--work-dir')


class StreamCheckpoint:
    """The position in a stream, and the state file that continues it.

    Args:
        state_file (str): The state file's name in the work dir.
        interval (int): Save every this many batches and at every domain
            boundary; 0 never saves.
    """

    def __init__(self, state_file: str, interval: int) -> None:
        if not isinstance(interval, int) or interval < 0:
            raise ValueError(
                f'checkpoint_interval={interval!r}: give a number of steps '
                '>= 0 (0 disables the adaptation state)')
        self.state_file = state_file
        self.path: Optional[str] = None  # in the work dir, see start()
        self.interval = interval
        self.position = 0  # batches consumed
        self.consumed = 0  # samples consumed
        self.last_saved = 0
        self.rng: Optional[dict] = None
        self.fingerprint: Optional[dict] = None
        self.removed: List[dict] = []  # samples removed at a resume

    @property
    def saving(self) -> bool:
        """Whether states are written.

        One process sees one shard of the stream and of the metric: the
        state of a distributed run is not one file (not supported).
        """
        return self.interval > 0 and get_world_size() == 1

    def start(self, runner, method_cfg: dict, options: Dict[str, bool],
              model: torch.nn.Module, resume: bool) -> None:
        """Fingerprint the run before adapting; clear interrupted writes.

        Called before the method touches the model: the fingerprint holds
        the weights the stream starts from.

        Args:
            runner (Runner): The test runner.
            method_cfg (dict): The TTA method's config.
            options (dict): The hook's options that change what is
                computed (:data:`~mmseg_ecotta.engine.run_identity.
                HOOK_OPTIONS`).
            model (nn.Module): The model with ``load_from`` loaded.
            resume (bool): Whether the run resumes.
        """
        self.path = osp.join(runner.work_dir, self.state_file)
        loader = runner.test_loop.dataloader
        if self.saving or resume:
            self.fingerprint = run_fingerprint(runner.cfg, method_cfg, options,
                                               model, loader.dataset,
                                               loader.batch_size)
        if self.saving:
            # What a kill during a state write left (the state is intact).
            for tmp in remove_stale_temporaries(self.path):
                runner.logger.info(f'removed {tmp}, left by an interrupted '
                                   'state write')

    def due(self, boundary: bool) -> bool:
        """Whether a state is written before the next batch."""
        return self.saving and self.position > self.last_saved and (
            boundary or self.position % self.interval == 0)

    def advance(self, samples: int) -> None:
        """Count a finished batch of ``samples`` samples."""
        self.position += 1
        self.consumed += samples
        if self.saving:
            # The RNG as the next batch starts: a state saved before that
            # batch replays it from here.
            self.rng = capture_rng_state()

    def save(self, method: TTAMethod, segment: Optional[tuple],
             metrics: List[Any]) -> None:
        """Write everything the rest of the stream depends on."""
        state = dict(
            version=STATE_VERSION,
            fingerprint=self.fingerprint,
            position=self.position,
            consumed=self.consumed,
            removed_samples=self.removed,
            segment=segment,
            method=method.state_dict(),
            rng=self.rng,
            metric_results=metric_results(metrics))
        save_state_atomic(state, self.path)
        self.last_saved = self.position

    def resume(self, runner, method: TTAMethod) -> tuple:
        """Restore the saved state and start the test loop at its position.

        Returns:
            tuple: The ``(round, domain)`` the stream was in.
        """
        state = load_state(self.path, self.fingerprint)
        check_state(state, self.path)
        try:
            method.load_state_dict(state['method'])
            restore_metric_results(runner.test_evaluator.metrics,
                                   state['metric_results'])
            restore_rng_state(state['rng'])
        except (KeyError, TypeError, ValueError, RuntimeError, IndexError,
                AttributeError) as e:
            raise malformed_state(
                self.path, f'{type(e).__name__}: {e}'.splitlines()[0]) from e
        segment = tuple(state['segment'])
        self.position = self.last_saved = state['position']
        self.rng = state['rng']
        loop = runner.test_loop
        saved = state['fingerprint']
        removed = removed_samples(saved, self.fingerprint)
        self.consumed = resume_position(saved, self.fingerprint,
                                        state['consumed'])
        if removed:
            check_sequential(loop.dataloader)
            runner.logger.warning(
                f'resuming without {len(removed)} sample'
                f"{'s' if len(removed) > 1 else ''} removed since the "
                'state was saved (listed in the results as '
                'removed_samples): ' +
                ', '.join(f"{r['domain']}: {r['sample']}"
                          for r in removed[:5]) +
                (', ...' if len(removed) > 5 else ''))
        self.removed = state['removed_samples'] + removed
        # mmengine's TestLoop iterates its public ``dataloader`` after the
        # before_test hooks: swap in one that starts at the position.
        loop.dataloader = dataloader_from(loop.dataloader, self.consumed)
        runner.logger.info(
            f'resumed from {self.path} at batch {self.position} of '
            f'{self.position + len(loop.dataloader)} (round '
            f'{segment[0] + 1}, {segment[1]})')
        return segment
