"""The contract every test-time adaptation method follows.

A method is three decisions (after tent, Wang et al., ICLR 2021):

1. :meth:`TTAMethod.configure_norms`: how each BN layer normalises while
   adapting (stored source statistics or the test batch's);
2. :meth:`TTAMethod.collect_params`: which parameters get gradients;
3. :meth:`TTAMethod.loss`: what is minimised on each test batch.

The base class owns everything else once: re-enabling gradients inside
mmengine's ``no_grad`` test loop, the optimizer built from config, the
snapshot and exact reset, skipping non-finite updates, memory and time
accounting, and the online protocol (the scored prediction comes from the
same forward pass that produces the loss: predict, then update).

Train/eval mode is deliberately *not* one of the decisions: mmengine's
test loop calls ``model.eval()`` after the hooks ran, and dropout should
stay off while predicting. BN behaviour is set per layer by
:func:`~mmseg_ecotta.models.norm.convert_batchnorms` instead, which does not
depend on the module's mode.
"""
import copy
import time
from typing import Any, Dict, List, Optional, Tuple

import torch
import torch.nn as nn
from mmengine.logging import MMLogger
from mmengine.registry import OPTIMIZERS
from mmseg.models.segmentors import EncoderDecoder
from mmseg.models.utils import resize
from torch import Tensor

from ..models.lean_backward import make_lean
from ..models.memory_probe import SavedTensorRecorder, SavedTensorReport

NamedParams = List[Tuple[str, nn.Parameter]]


class TTAMethod:
    """Base class of test-time adaptation methods.

    Args:
        model (EncoderDecoder): The segmentor to adapt, with its source
            weights already loaded. It is modified in place.
        optimizer (dict, optional): mmengine optimizer config without
            ``params``, e.g. ``dict(type='SGD', lr=1e-3)``. Ignored by
            methods without parameters to train.
        lean_backward (bool): Convert frozen convolutions, ReLUs and
            max-pools to versions that keep no activation for backward
            (:mod:`mmseg_ecotta.models.lean_backward`); gradients are
            identical. Defaults to False.
        measure_memory (bool): Record the bytes autograd saves in the first
            adaptation step. Defaults to True.
    """

    def __init__(self,
                 model: EncoderDecoder,
                 optimizer: Optional[dict] = None,
                 lean_backward: bool = False,
                 measure_memory: bool = True) -> None:
        if not isinstance(model, EncoderDecoder):
            raise TypeError(
                f'{type(self).__name__} adapts an mmseg EncoderDecoder, got '
                f'{type(model).__name__}')
        mode = model.test_cfg.get('mode', 'whole')
        if mode != 'whole':
            raise ValueError(
                f"model.test_cfg.mode={mode!r}: test-time adaptation needs "
                "one forward per image; set model.test_cfg=dict(mode='whole')")
        self.model = model
        self.configure_norms(model)
        self.named_params = self.collect_params(model)
        trainable = {id(p) for _, p in self.named_params}
        for param in model.parameters():
            param.requires_grad_(id(param) in trainable)
        self.optimizer = None
        if self.named_params:
            if optimizer is None:
                raise ValueError(f'{type(self).__name__} trains parameters: '
                                 'give it an optimizer config')
            if 'type' not in optimizer:
                raise ValueError(
                    f'optimizer={optimizer!r} has no type; give the whole '
                    "optimizer, e.g. dict(type='Adam', lr=1e-4) (with "
                    '--cfg-options: custom_hooks.0.method.optimizer.type=Adam '
                    'custom_hooks.0.method.optimizer.lr=1e-4)')
            self.optimizer = OPTIMIZERS.build(
                dict(optimizer, params=[p for _, p in self.named_params]))
        if lean_backward:
            make_lean(model)
        self.measure_memory = measure_memory
        self.saved_tensors: Optional[SavedTensorReport] = None
        self.stats = dict(steps=0, updates=0, skipped_nonfinite=0, resets=0)
        self.seconds = 0.0
        self.images = 0
        self._snapshot = self.state_dict()

    # --- the three decisions -------------------------------------------
    def configure_norms(self, model: nn.Module) -> None:
        """Decide how BN layers normalise. Default: as loaded (source)."""

    def collect_params(self, model: nn.Module) -> NamedParams:
        """Decide which parameters adapt. Default: none."""
        return []

    def loss(self, logits: Tensor) -> Tensor:
        """Adaptation loss of one batch's decoder logits (N, C, H, W)."""
        raise NotImplementedError(
            f'{type(self).__name__} trains parameters but defines no loss')

    # --- shared machinery ----------------------------------------------
    def settings(self) -> Dict[str, Any]:
        """Effective settings worth recording with the results.

        Values that come from somewhere other than the method config
        (e.g. the model) belong here, so ``tta_results.json`` says what ran.
        """
        return {}

    @property
    def num_trainable_params(self) -> int:
        """Number of parameter elements the optimizer updates."""
        return sum(p.numel() for _, p in self.named_params)

    def state_dict(self) -> Dict[str, Any]:
        """Everything adaptation changes: model and optimizer state.

        Of the model, only the parameters the optimizer updates and the
        buffers are kept: frozen weights never change (the generic method
        tests assert it bit for bit), so a snapshot of R50 EcoTTA holds its
        meta networks, not a second copy of the whole network.
        """
        mutable = {n for n, _ in self.named_params}
        mutable |= {n for n, _ in self.model.named_buffers()}
        model_state = {
            k: v
            for k, v in self.model.state_dict().items() if k in mutable
        }
        return copy.deepcopy(
            dict(
                model=model_state,
                optimizer=self.optimizer.state_dict()
                if self.optimizer else None))

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` exactly."""
        unexpected = self.model.load_state_dict(
            state['model'], strict=False).unexpected_keys
        if unexpected:
            raise KeyError(f'adaptation state has keys {unexpected[:5]} '
                           'that this model does not have: it was saved for '
                           'another model or method')
        if self.optimizer is not None:
            self.optimizer.load_state_dict(copy.deepcopy(state['optimizer']))

    def reset(self) -> None:
        """Return to the state right after construction (episodic TTA)."""
        self.load_state_dict(self._snapshot)
        self.stats['resets'] += 1

    def decode(self, inputs: Tensor) -> Tensor:
        """Decoder logits at the decode head's resolution, (N, C, h, w).

        The loss is computed here, before the upsampling to the input
        size: 16x fewer elements to keep for backward at output stride 4.
        """
        return self.model.decode_head(self.model.extract_feat(inputs))

    def forward_and_adapt(self, inputs: Tensor) -> Tensor:
        """One forward; if the method trains, one backward and one update.

        Args:
            inputs (Tensor): Normalised images, shape (N, 3, H, W).

        Returns:
            Tensor: Detached decoder logits of that same forward.
        """
        if self.optimizer is None:
            with torch.no_grad():
                return self.decode(inputs)
        record = self.measure_memory and self.saved_tensors is None
        # mmengine runs test iterations under no_grad: re-enable it here.
        with torch.enable_grad():
            if record:
                with SavedTensorRecorder(self.model) as recorder:
                    logits = self.decode(inputs)
                    loss = self.loss(logits)
                self.saved_tensors = recorder.report()
            else:
                logits = self.decode(inputs)
                loss = self.loss(logits)
            self.update(loss)
        self.after_update(inputs, logits)
        return logits.detach()

    def update(self, loss: Tensor) -> None:
        """Backward and step, unless the loss or a gradient is not finite."""
        self.stats['steps'] += 1
        self.optimizer.zero_grad(set_to_none=True)
        if torch.isfinite(loss):
            loss.backward()
            grads = [
                p.grad for _, p in self.named_params if p.grad is not None
            ]
            if all(bool(torch.isfinite(g).all()) for g in grads):
                self.optimizer.step()
                self.stats['updates'] += 1
                return
            self.optimizer.zero_grad(set_to_none=True)
        self.stats['skipped_nonfinite'] += 1
        MMLogger.get_current_instance().warning(
            f'{type(self).__name__}: non-finite loss or gradient at step '
            f'{self.stats["steps"]}; update skipped '
            f'({self.stats["skipped_nonfinite"]} so far)')

    def after_update(self, inputs: Tensor, logits: Tensor) -> None:
        """Hook for methods that act after each update (e.g. EMA)."""

    def test_step(self, data_batch: dict) -> list:
        """Drop-in for ``model.test_step``: adapt, then return predictions.

        Args:
            data_batch (dict): A batch from the test dataloader.

        Returns:
            list[SegDataSample]: Predictions of the same forward pass that
            produced the adaptation loss.
        """
        start = time.perf_counter()
        data = self.model.data_preprocessor(data_batch, False)
        inputs, data_samples = data['inputs'], data['data_samples']
        logits = self.forward_and_adapt(inputs)
        seg_logits = resize(
            logits,
            size=inputs.shape[2:],
            mode='bilinear',
            align_corners=self.model.align_corners)
        results = self.model.postprocess_result(seg_logits, data_samples)
        self.seconds += time.perf_counter() - start
        self.images += inputs.shape[0]
        return results
