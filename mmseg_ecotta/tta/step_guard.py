"""Undo an optimizer step that broke the weights.

A learning rate that is far too large (or NaN), or a pathological batch,
can turn the adapted weights non-finite in one step, or finite but so
large that the *next* forward overflows. Skipping later updates cannot
repair either: the damage is already in the weights. :class:`StepGuard`
keeps a copy of the trainable state from right before the last optimizer
step, so that the step can be undone when it turns out to be bad.

Memory: one copy of the trainable parameters and of their optimizer state
(plus whatever a method adds, e.g. CoTTA's teacher), allocated once and
reused by every step, so a long stream allocates nothing per step here.
For EcoTTA and TENT that is a copy of the meta networks or BN affine
parameters (small); for CoTTA with ``trainable='all'`` it is about four
copies of the network's weights (student, teacher, two Adam moments).
"""
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor
from torch.optim import Optimizer

# Marks an optimizer-state value kept in a buffer.
_TENSOR = object()


class StepGuard:
    """The trainable state from before the last step, to undo that step.

    Args:
        tensors (Sequence[Tensor]): What a step changes besides the
            optimizer state: the trainable parameters, then any tensor a
            method updates from them (e.g. an EMA teacher).
        optimizer (Optimizer): The optimizer whose per-parameter state
            (momentum, Adam moments, step counts) is saved with them.
    """

    def __init__(self, tensors: Sequence[Tensor],
                 optimizer: Optimizer) -> None:
        self.tensors = list(tensors)
        self.optimizer = optimizer
        self.params = [
            p for group in optimizer.param_groups for p in group['params']
        ]
        # Reused buffers, keyed by ('tensor', i) or (param index, key).
        self._buffers: Dict[Tuple[Any, Any], Tensor] = {}
        # Per parameter: its optimizer state's non-tensor values and the
        # keys of its tensor values (None: the parameter had no state).
        self._state: List[Optional[Dict[str, Any]]] = []
        self.saved = False

    def save(self) -> None:
        """Copy the current state (call right before ``optimizer.step``)."""
        for i, tensor in enumerate(self.tensors):
            self._copy(('tensor', i), tensor)
        self._state = []
        for i, param in enumerate(self.params):
            state = self.optimizer.state.get(param)
            if not state:
                self._state.append(None)
                continue
            entry = {}
            for key, value in state.items():
                if torch.is_tensor(value):
                    self._copy((i, key), value)
                    entry[key] = _TENSOR
                else:
                    entry[key] = value
            self._state.append(entry)
        self.saved = True

    def restore(self) -> bool:
        """Put back the saved state, once.

        Returns:
            bool: Whether there was a saved state to put back.
        """
        if not self.saved:
            return False
        with torch.no_grad():
            for i, tensor in enumerate(self.tensors):
                tensor.copy_(self._buffers[('tensor', i)])
            for i, (param, entry) in enumerate(zip(self.params, self._state)):
                if entry is None:  # the step created this state
                    self.optimizer.state.pop(param, None)
                    continue
                # New tensors, not copies into the old ones: a step may
                # have replaced or dropped them.
                self.optimizer.state[param] = {
                    key:
                    self._buffers[(i,
                                   key)].clone() if value is _TENSOR else value
                    for key, value in entry.items()
                }
        self.saved = False
        return True

    def discard(self) -> None:
        """Forget the saved state (the step it guards proved good)."""
        self.saved = False

    def finite(self) -> bool:
        """Whether the tensors and the optimizer state are all finite."""
        state = [
            v for p in self.params
            for v in self.optimizer.state.get(p, {}).values()
            if torch.is_tensor(v) and v.is_floating_point()
        ]
        return all(bool(torch.isfinite(t).all()) for t in self.tensors + state)

    def _copy(self, key: Tuple[Any, Any], tensor: Tensor) -> None:
        buffer = self._buffers.get(key)
        if (buffer is None or buffer.shape != tensor.shape
                or buffer.dtype != tensor.dtype
                or buffer.device != tensor.device):
            self._buffers[key] = tensor.detach().clone()
        else:
            buffer.copy_(tensor.detach())
