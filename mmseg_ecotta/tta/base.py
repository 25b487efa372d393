"""The contract every test-time adaptation method follows.

A method is three decisions (after tent, Wang et al., ICLR 2021):

1. :meth:`TTAMethod.configure_norms`: how each BN layer normalises while
   adapting (stored source statistics or the test batch's);
2. :meth:`TTAMethod.collect_params`: which parameters get gradients (a
   method that trains must find some: a model it cannot adapt is an error
   naming the model, :func:`model_name`, never a run that adapts nothing);
3. :meth:`TTAMethod.loss`: what is minimised on each test batch.

The base class owns everything else once: re-enabling gradients inside
mmengine's ``no_grad`` test loop, the optimizer built from config (and
restarted at every domain where a recipe asks,
:meth:`TTAMethod.segment_started`), the snapshot and exact reset, the
non-finite guard (a step that breaks the weights is undone, see
:mod:`~mmseg_ecotta.tta.step_guard`), memory and time accounting, and
the online protocol (the scored prediction comes from the same forward
pass that produces the loss: predict, then update).

The loss says what it needs: :meth:`TTAMethod.loss` gets the logits, the
normalised batch and, as keywords, whatever else :meth:`TTAMethod.forward`
returned (EcoTTA's partition outputs, CoTTA's pseudo-label), and returns
``None`` to skip the update (EATA's filters). Nothing passes between calls
on the side.

**Constructor order.** :meth:`TTAMethod.__init__` calls the decisions
(``configure_norms``, ``collect_params``) and takes the reset snapshot
(``state_dict``), so a subclass sets every attribute those read (its
settings, and copies of the source model such as CoTTA's teacher) *before*
calling ``super().__init__``, and what needs the collected parameters
(``named_params``) after it.

Train/eval mode is deliberately *not* one of the decisions: mmengine's
test loop calls ``model.eval()`` after the hooks ran, and dropout should
stay off while predicting. BN behaviour is set per layer by
:func:`~mmseg_ecotta.models.norm.convert_batchnorms` instead, which does not
depend on the module's mode.
"""
import copy
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
import torch.nn as nn
from mmengine.logging import MMLogger
from mmengine.registry import OPTIMIZERS
from mmseg.models.segmentors import EncoderDecoder
from mmseg.models.utils import resize
from torch import Tensor

from ..models.lean_backward import make_lean
from ..models.memory_probe import SavedTensorRecorder, SavedTensorReport
from .step_guard import StepGuard

NamedParams = List[Tuple[str, nn.Parameter]]


def model_name(model: nn.Module) -> str:
    """The segmentor and its parts, for error messages.

    E.g. ``'EncoderDecoder (MixVisionTransformer, SegformerHead)'``.
    """
    parts = [
        type(getattr(model, part)).__name__
        for part in ('backbone', 'decode_head') if hasattr(model, part)
    ]
    return f'{type(model).__name__} ({", ".join(parts)})' if parts \
        else type(model).__name__


class TTAMethod:
    """Base class of test-time adaptation methods.

    Args:
        model (EncoderDecoder): The segmentor to adapt, with its source
            weights already loaded. It is modified in place.
        optimizer (dict, optional): mmengine optimizer config without
            ``params``, e.g. ``dict(type='SGD', lr=1e-3)``; each method's
            default is in ``configs/_base_/tta/<method>.py``. Required by
            methods with parameters to train, ignored by the others.
        lean_backward (bool): Convert frozen convolutions, ReLUs and
            max-pools to versions that keep no activation for backward
            (:mod:`mmseg_ecotta.models.lean_backward`); gradients are
            identical. Defaults to False.
        measure_memory (bool): Record the bytes autograd saves in the first
            adaptation step. Defaults to True.
        reset_after_nonfinite (int): Reset to the source state after this
            many non-finite steps in a row (each one skipped, and the last
            update undone where it caused it); 0 never resets. Defaults to
            5: one bad image is skipped, a model that stays broken after
            its last update was undone is reset.
        optimizer_per_domain (bool): Start every ``(round, domain)`` segment
            of the stream with a fresh optimizer (:meth:`segment_started`),
            as CoTTA's segmentation release does; False keeps one optimizer
            for the whole stream. Defaults to False.
    """

    def __init__(self,
                 model: EncoderDecoder,
                 optimizer: Optional[dict] = None,
                 lean_backward: bool = False,
                 measure_memory: bool = True,
                 reset_after_nonfinite: int = 5,
                 optimizer_per_domain: bool = False) -> None:
        if not isinstance(model, EncoderDecoder):
            raise TypeError(
                f'{type(self).__name__} adapts an mmseg EncoderDecoder, got '
                f'{type(model).__name__}')
        mode = model.test_cfg.get('mode', 'whole')
        if not isinstance(reset_after_nonfinite,
                          int) or reset_after_nonfinite < 0:
            raise ValueError(
                f'reset_after_nonfinite={reset_after_nonfinite!r}: give a '
                'number of consecutive non-finite steps >= 0 (0 never '
                'resets)')
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
                module = type(self).__module__.rsplit('.', 1)[-1]
                raise ValueError(
                    f'{type(self).__name__} trains parameters but got no '
                    'optimizer: inherit its defaults from '
                    f'configs/_base_/tta/{module}.py or give one, e.g. '
                    "optimizer=dict(type='SGD', lr=1e-3)")
            self.optimizer = OPTIMIZERS.build(
                dict(optimizer, params=[p for _, p in self.named_params]))
        if lean_backward:
            make_lean(model)
        self.measure_memory = measure_memory
        self.saved_tensors: Optional[SavedTensorReport] = None
        self.reset_after_nonfinite = reset_after_nonfinite
        self.optimizer_per_domain = optimizer_per_domain
        self.stats = dict(
            steps=0,
            updates=0,
            skipped_nonfinite=0,
            undone_updates=0,
            nonfinite_resets=0,
            resets=0)
        self.seconds = 0.0
        self.images = 0
        self._nonfinite_streak = 0
        self._guard: Optional[StepGuard] = None  # built at the first step
        # Called after each step taken, with the step's logits and loss
        # (gradients still on the parameters); AdaptationTraceHook's.
        self.step_observers: List[Callable[[Tensor, Tensor], None]] = []
        self._snapshot = self.state_dict()
        del self._snapshot['counters']  # a reset keeps counting

    # --- the three decisions -------------------------------------------
    def configure_norms(self, model: nn.Module) -> None:
        """Decide how BN layers normalise. Default: as loaded (source)."""

    def collect_params(self, model: nn.Module) -> NamedParams:
        """Decide which parameters adapt. Default: none."""
        return []

    def loss(self, logits: Tensor, inputs: Tensor,
             **outputs: Any) -> Optional[Tensor]:
        """Adaptation loss of one batch.

        Args:
            logits (Tensor): Decoder logits of :meth:`forward`,
                shape (N, C, h, w).
            inputs (Tensor): The normalised batch, shape (N, 3, H, W).
            **outputs: The other outputs of :meth:`forward`, by name.

        Returns:
            Tensor | None: Scalar loss, or None to take no step on this
            batch (not even the optimizer's momentum moves the weights).
        """
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
    def predicting_network(self) -> nn.Module:
        """The network whose predictions the method reports (and deploys).

        The adapted model; a mean-teacher method's teacher.
        """
        return self.model

    @property
    def extra_networks(self) -> List[nn.Module]:
        """Networks the method holds besides the adapted model (copies)."""
        return []

    @property
    def num_trainable_params(self) -> int:
        """Number of parameter elements the optimizer updates."""
        return sum(p.numel() for _, p in self.named_params)

    def state_dict(self) -> Dict[str, Any]:
        """Everything adaptation changes: model, optimizer and counters.

        Of the model, only the parameters the optimizer updates and the
        buffers are kept: frozen weights never change (the generic method
        tests assert it bit for bit), so a snapshot of R50 EcoTTA holds its
        meta networks, not a second copy of the whole network. ``counters``
        (:meth:`counters`) is what a resumed run continues counting from;
        a reset restores the rest and keeps counting.
        """
        return dict(self._adapted_state(), counters=self.counters())

    def counters(self) -> Dict[str, Any]:
        """Steps, updates and skips, time, images, the memory record."""
        return dict(
            stats=dict(self.stats),
            seconds=self.seconds,
            images=self.images,
            saved_tensors=self.saved_tensors.to_dict()
            if self.saved_tensors else None)

    def _adapted_state(self) -> Dict[str, Any]:
        """Model and optimizer state: what :meth:`reset` restores."""
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

    def guarded_tensors(self) -> List[Tensor]:
        """What an optimizer step changes, besides the optimizer state.

        The trainable parameters; a method that updates other tensors
        from them after each step (an EMA teacher) adds those.
        """
        return [p for _, p in self.named_params]

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` exactly."""
        if self._guard is not None:
            self._guard.discard()  # it guarded a step of another state
        unexpected = self.model.load_state_dict(
            state['model'], strict=False).unexpected_keys
        if unexpected:
            raise KeyError(f'adaptation state has keys {unexpected[:5]} '
                           'that this model does not have: it was saved for '
                           'another model or method')
        if self.optimizer is not None:
            self.optimizer.load_state_dict(copy.deepcopy(state['optimizer']))
        counters = state.get('counters')
        if counters is not None:
            self.stats.update(counters['stats'])
            self.seconds = counters['seconds']
            self.images = counters['images']
            saved = counters['saved_tensors']
            self.saved_tensors = None if saved is None else \
                SavedTensorReport.from_dict(saved)

    def reset(self) -> None:
        """Return to the state right after construction (episodic TTA).

        The counters keep counting: the snapshot holds none.
        """
        self.load_state_dict(self._snapshot)
        self.stats['resets'] += 1

    def segment_started(self) -> None:
        """A new ``(round, domain)`` segment of the stream begins.

        :class:`~mmseg_ecotta.engine.TestTimeAdaptationHook` calls this at
        every domain boundary (not before the first segment), after an
        episodic reset and before the state file of the boundary is
        written, so a resumed run starts from what this left. With
        ``optimizer_per_domain`` the optimizer goes back to its state at
        construction: what a freshly built one holds (same settings, no
        moments, no step count). The weights keep adapting.
        """
        if not self.optimizer_per_domain or self.optimizer is None:
            return
        if self._guard is not None:
            # The guarded step's optimizer state belongs to the finished
            # domain: undoing that step would bring it back.
            self._guard.discard()
        self.optimizer.load_state_dict(
            copy.deepcopy(self._snapshot['optimizer']))

    def decode(self, inputs: Tensor) -> Tensor:
        """Decoder logits at the decode head's resolution, (N, C, h, w).

        The loss is computed here, before the upsampling to the input
        size: 16x fewer elements to keep for backward at output stride 4.
        """
        return self.model.decode_head(self.model.extract_feat(inputs))

    def forward(self, inputs: Tensor) -> Tuple[Tensor, Dict[str, Any]]:
        """The adaptation forward: logits and what else the loss takes.

        Default: :meth:`decode` alone. A method whose :meth:`loss` needs
        more of the same pass (EcoTTA's partition outputs) or a target
        computed before it (CoTTA's pseudo-label) returns it here, under
        the keyword :meth:`loss` takes it by.

        Args:
            inputs (Tensor): Normalised images, shape (N, 3, H, W).

        Returns:
            tuple[Tensor, dict]: Decoder logits (N, C, h, w) and the
            other outputs by name.
        """
        return self.decode(inputs), {}

    def forward_and_adapt(self, inputs: Tensor) -> Tensor:
        """One forward; if the method trains, one backward and one update.

        A non-finite forward takes no step: it undoes the last update and
        predicts again (:meth:`recover`).

        Args:
            inputs (Tensor): Normalised images, shape (N, 3, H, W).

        Returns:
            Tensor: The scored prediction (:meth:`prediction`), by default
            the detached decoder logits of that same forward.
        """
        if self.optimizer is None:
            with torch.no_grad():
                return self.decode(inputs)
        record = self.measure_memory and self.saved_tensors is None
        restorations = self._restorations()
        # mmengine runs test iterations under no_grad: re-enable it here.
        with torch.enable_grad():
            if record:
                with SavedTensorRecorder(self.model) as recorder:
                    logits, outputs = self.forward(inputs)
                    loss = self.loss(logits, inputs, **outputs)
                self.saved_tensors = recorder.report()
            else:
                logits, outputs = self.forward(inputs)
                loss = self.loss(logits, inputs, **outputs)
            if bool(torch.isfinite(logits).all()):
                # The weights of the last update gave a finite forward:
                # that update is no longer a candidate to undo.
                self.guard.discard()
                if loss is None:
                    self._skip()
                else:
                    self.update(loss)
                    for observe in self.step_observers:
                        observe(logits.detach(), loss.detach())
            else:
                logits = self.recover(inputs, logits)
        self.after_update(inputs, logits)
        restored = self._restorations() != restorations
        return self.prediction(inputs, logits.detach(), restored, **outputs)

    def prediction(self, inputs: Tensor, logits: Tensor, restored: bool,
                   **outputs: Any) -> Tensor:
        """The prediction scored for this batch; default: ``logits``.

        Args:
            inputs (Tensor): The batch, shape (N, 3, H, W).
            logits (Tensor): Detached decoder logits of the adaptation
                forward (or of :meth:`recover`), (N, C, h, w).
            restored (bool): Whether this step undid an update or reset
                the weights (a prediction made before that is stale).
            **outputs: The other outputs of :meth:`forward`.

        Returns:
            Tensor: Logits or log-probabilities, (N, C, h, w) or at the
            input resolution.
        """
        return logits

    def _restorations(self) -> int:
        """How often the weights were put back (undone or reset)."""
        return self.stats['undone_updates'] + self.stats['nonfinite_resets']

    def _skip(self) -> None:
        """Count a step the loss declined (it returned None)."""
        self.stats['steps'] += 1
        self.stats['skipped_filtered'] = self.stats.get('skipped_filtered',
                                                        0) + 1

    def update(self, loss: Tensor) -> None:
        """Backward and step; skip or undo a step that is not finite.

        A non-finite loss or gradient skips the step. After the step, the
        parameters and the optimizer state are checked: if anything is
        non-finite, the step is undone at once.
        """
        self.stats['steps'] += 1
        self.optimizer.zero_grad(set_to_none=True)
        if not torch.isfinite(loss):
            self._reject('non-finite loss', undo=False)
            return
        loss.backward()
        grads = [p.grad for _, p in self.named_params if p.grad is not None]
        if not all(bool(torch.isfinite(g).all()) for g in grads):
            self.optimizer.zero_grad(set_to_none=True)
            self._reject('non-finite gradient', undo=False)
            return
        self.guard.save()
        try:
            self.optimizer.step()
        except RuntimeError as e:
            # e.g. Adam at lr=1e38: its step size overflows float32.
            self.guard.restore()
            lrs = sorted({g['lr'] for g in self.optimizer.param_groups})
            lr = lrs[0] if len(lrs) == 1 else lrs
            raise RuntimeError(
                f'{type(self).__name__}: the optimizer step failed ({e}); '
                f'check the optimizer config (lr={lr})') from e
        if not self.guard.finite():
            self._reject('non-finite weights after the step', undo=True)
            return
        self.stats['updates'] += 1
        self._nonfinite_streak = 0

    def recover(self, inputs: Tensor, logits: Tensor) -> Tensor:
        """Non-finite logits: undo the last update and predict again.

        Weights that are finite but huge (e.g. after a step with a far too
        large learning rate) only show in the next forward, which
        overflows. That forward's prediction is replaced by one of the
        weights from before the offending update.

        Args:
            inputs (Tensor): The batch, shape (N, 3, H, W).
            logits (Tensor): Its non-finite decoder logits (N, C, h, w).

        Returns:
            Tensor: Decoder logits of the restored weights (still the
            non-finite ones where nothing could be restored).
        """
        self.stats['steps'] += 1
        self.optimizer.zero_grad(set_to_none=True)
        if self._reject('non-finite prediction', undo=True):
            with torch.no_grad():
                return self.decode(inputs)
        return logits

    @property
    def guard(self) -> StepGuard:
        """The :class:`StepGuard` of the trainable state."""
        if self._guard is None:
            self._guard = StepGuard(self.guarded_tensors(), self.optimizer)
        return self._guard

    def _reject(self, what: str, undo: bool) -> bool:
        """Count a skipped step; undo the last update; reset if stuck.

        Args:
            what (str): What was not finite, for the log.
            undo (bool): Whether the last update caused it (then it is
                undone, if the guard still holds the state before it).

        Returns:
            bool: Whether the weights changed (undone or reset).
        """
        self.stats['skipped_nonfinite'] += 1
        self._nonfinite_streak += 1
        message = (f'{type(self).__name__}: {what} at step '
                   f'{self.stats["steps"]}; update skipped')
        changed = undo and self.guard.restore()
        if changed:
            self.stats['undone_updates'] += 1
            message += ', the last update undone'
        limit = self.reset_after_nonfinite
        if limit and self._nonfinite_streak >= limit:
            self.reset()
            self.stats['nonfinite_resets'] += 1
            self._nonfinite_streak = 0
            changed = True
            message += (f'; {limit} in a row: reset to the source state '
                        '(lower the learning rate if this repeats)')
        MMLogger.get_current_instance().warning(
            f'{message} ({self.stats["skipped_nonfinite"]} skipped so far)')
        return changed

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
