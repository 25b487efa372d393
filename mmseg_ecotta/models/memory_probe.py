"""Measure the bytes autograd keeps alive for the backward pass.

The measure is the one quoted in the field notes (section 3): every tensor
an op saves for backward is seen by
``torch.autograd.graph.saved_tensors_hooks``; tensors sharing one storage
(views, or a tensor saved by several ops) are counted once, at the size of
their storage, which is what actually stays in memory.

Saved parameters and buffers are reported apart from activations: they
live in memory whether or not a graph exists, so "activations saved for
backward" is the number that says what adaptation costs.
"""
import weakref
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional, Set, Tuple

import torch
import torch.nn as nn
from torch import Tensor

__all__ = [
    'SavedTensorGroup', 'SavedTensorRecorder', 'SavedTensorReport',
    'profile_saved_tensors', 'saved_tensor_bytes'
]

# Identity of a storage: (device, data pointer, bytes). Storages alive at
# the same time never share a pointer, except empty ones.
_StorageKey = Tuple[str, int, int]


@dataclass
class SavedTensorGroup:
    """Saved storages of one kind, dtype and shape.

    Attributes:
        kind (str): ``'activation'`` or ``'weight'`` (parameter or buffer).
        dtype (torch.dtype): Dtype of the saved tensors.
        shape (tuple[int, ...]): Shape of the saved tensors (of the largest
            view when a storage was saved through several views).
        count (int): Number of distinct storages.
        nbytes (int): Bytes of those storages together.
    """
    kind: str
    dtype: torch.dtype
    shape: Tuple[int, ...]
    count: int = 0
    nbytes: int = 0


@dataclass
class SavedTensorReport:
    """What autograd saved for backward, de-duplicated by storage.

    Attributes:
        activation_bytes (int): Bytes of saved tensors that are neither
            parameters nor buffers.
        weight_bytes (int): Bytes of saved parameters and buffers.
        groups (list[SavedTensorGroup]): Breakdown by kind, dtype and
            shape, largest first.
    """
    activation_bytes: int = 0
    weight_bytes: int = 0
    groups: List[SavedTensorGroup] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        """Bytes of activations and weights together."""
        return self.activation_bytes + self.weight_bytes

    def to_dict(self) -> dict:
        """The report as plain data (dicts, numbers, dtypes, tuples)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> 'SavedTensorReport':
        """The report :meth:`to_dict` returned ``data`` for."""
        return cls(
            activation_bytes=data['activation_bytes'],
            weight_bytes=data['weight_bytes'],
            groups=[SavedTensorGroup(**g) for g in data['groups']])

    def table(self, top: int = 10) -> str:
        """Format the ``top`` largest groups, one per line.

        Args:
            top (int): How many groups to list. Default: 10.

        Returns:
            str: A human-readable table in MiB.
        """
        mib = 2.0**20
        lines = [
            f'activations {self.activation_bytes / mib:.2f} MiB, '
            f'weights {self.weight_bytes / mib:.2f} MiB'
        ]
        for g in self.groups[:top]:
            dtype = str(g.dtype).replace('torch.', '')
            lines.append(f'{g.nbytes / mib:10.3f} MiB  {g.count:4d} x '
                         f'{g.kind:10s} {dtype:8s} {tuple(g.shape)}')
        return '\n'.join(lines)


class _Saved:
    """Holder returned by the pack hook.

    Autograd keeps it alive exactly as long as the saved tensor is part of
    a live graph, so a weak reference to it tells whether the tensor is
    still kept when ``fn`` returns.
    """
    __slots__ = ('tensor', '__weakref__')

    def __init__(self, tensor: Tensor) -> None:
        self.tensor = tensor


def storage_key(t: Tensor) -> _StorageKey:
    """What identifies the memory ``t`` lives in: device, address, size."""
    storage = t.untyped_storage()
    return str(t.device), storage.data_ptr(), storage.nbytes()


class SavedTensorRecorder:
    """Context manager recording what autograd saves inside its block.

    Use it around the forward pass of a real step, then call
    :meth:`report` while the loss (hence its graph) is still alive::

        with SavedTensorRecorder(model) as recorder:
            loss = step_forward()
        report = recorder.report()
        loss.backward()

    Args:
        module (nn.Module, optional): Its parameters *and buffers* count as
            weights. ``nn.Parameter`` instances always count as weights.
            Default: None.
    """

    def __init__(self, module: Optional[nn.Module] = None) -> None:
        self._holders: List['weakref.ref[_Saved]'] = []
        self._weight_keys: Set[_StorageKey] = set()
        if module is not None:
            for t in list(module.parameters()) + list(module.buffers()):
                self._weight_keys.add(storage_key(t))
        self._hooks = torch.autograd.graph.saved_tensors_hooks(
            self._pack, self._unpack)

    def _pack(self, t: Tensor) -> _Saved:
        saved = _Saved(t)
        self._holders.append(weakref.ref(saved))
        return saved

    @staticmethod
    def _unpack(saved: _Saved) -> Tensor:
        return saved.tensor

    def __enter__(self) -> 'SavedTensorRecorder':
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)

    def report(self) -> SavedTensorReport:
        """Report the saved tensors that live graphs still hold.

        Tensors saved by parts of the graph that were already freed (e.g.
        a discarded branch) are not counted.
        """
        # Storage key -> (kind, dtype, shape of the largest view, nbytes).
        storages: Dict[_StorageKey, Tuple[str, torch.dtype, Tuple[int, ...],
                                          int]] = {}
        views: Dict[_StorageKey, int] = defaultdict(int)
        for ref in self._holders:
            saved = ref()
            if saved is None:
                continue
            t = saved.tensor
            key = storage_key(t)
            is_weight = (
                isinstance(t, nn.Parameter) or key in self._weight_keys)
            kind = 'weight' if is_weight else 'activation'
            # The whole storage stays alive, even if only a view was saved.
            nbytes = t.untyped_storage().nbytes()
            if t.numel() * t.element_size() >= views[key]:
                views[key] = t.numel() * t.element_size()
                storages[key] = (kind, t.dtype, tuple(t.shape), nbytes)

        report = SavedTensorReport()
        groups: Dict[Tuple[str, torch.dtype, Tuple[int, ...]],
                     SavedTensorGroup] = {}
        for kind, dtype, shape, nbytes in storages.values():
            if kind == 'weight':
                report.weight_bytes += nbytes
            else:
                report.activation_bytes += nbytes
            group = groups.setdefault((kind, dtype, shape),
                                      SavedTensorGroup(kind, dtype, shape))
            group.count += 1
            group.nbytes += nbytes
        report.groups = sorted(groups.values(), key=lambda g: -g.nbytes)
        return report


def profile_saved_tensors(
        fn: Callable[[], Tensor],
        module: Optional[nn.Module] = None) -> SavedTensorReport:
    """Run ``fn`` and report what its graph keeps for backward.

    ``fn`` runs with grad enabled and returns the loss; the report is taken
    while that loss (hence its graph) is alive, then everything is freed.
    No backward is run.

    Args:
        fn (Callable[[], Tensor]): Builds the graph and returns the loss.
        module (nn.Module, optional): See :class:`SavedTensorRecorder`.

    Returns:
        SavedTensorReport: Bytes by kind and the largest groups.
    """
    with torch.enable_grad(), SavedTensorRecorder(module) as recorder:
        loss = fn()
    report = recorder.report()
    del loss
    return report


def saved_tensor_bytes(fn: Callable[[], Tensor],
                       module: Optional[nn.Module] = None,
                       include_weights: bool = True) -> int:
    """Bytes that the graph built by ``fn`` keeps for backward.

    Args:
        fn (Callable[[], Tensor]): Builds the graph and returns the loss.
        module (nn.Module, optional): Its parameters and buffers count as
            weights (see :func:`profile_saved_tensors`). Default: None.
        include_weights (bool): Include saved parameters and buffers. Pass
            False to count only activations, the memory a graph adds on
            top of the model. Default: True.

    Returns:
        int: Saved bytes, de-duplicated by storage.
    """
    report = profile_saved_tensors(fn, module)
    if include_weights:
        return report.total_bytes
    return report.activation_bytes
