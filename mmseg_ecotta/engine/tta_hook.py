"""Turn any mmseg test run into continual test-time adaptation.

This hook reads the config's ``adaptation`` settings, installs the method,
owns the stream's segment boundaries and resets the method; the rest of a
run is delegated: resuming to :class:`~mmseg_ecotta.engine.adaptation_state.
StreamCheckpoint`, results and costs to
:class:`~mmseg_ecotta.engine.TTAResultsHook`, the source checkpoint check
to :mod:`~mmseg_ecotta.engine.source_checkpoint`.

**Why a hook patches ``model.test_step`` instead of a wrapper model.**
mmseg's own test-time augmentation is a registered wrapper model
(``SegTTAModel``), chosen in the config's ``model``. For adaptation that
pattern does not fit: mmengine builds the model *before* ``runner.test()``
loads ``load_from``, and the method must be built *after* it (CoTTA's
anchor and EATA's theta0 are copies of the loaded weights); a wrapper
would also change the model of every config, and so the checkpoint keys,
the export and what mmseg's ``tools/test.py`` builds. The hook instead
sets ``test_step`` as an attribute of the model *instance* in
``before_test``, after loading: no class is patched, mmengine's loop and
any model wrapper (which delegates to ``module.test_step``) call the
method, and a model built afresh is untouched.
"""
import copy
from dataclasses import dataclass, fields
from typing import Any, List, Optional

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS

from ..tta import build_tta_method
from ..utils import apply_config_opt_ins, check_finite_settings
from .adaptation_state import STATE_FILE, StreamCheckpoint
from .source_checkpoint import check_checkpoint_fits, source_checkpoint
from .stream import SegmentTracker, StreamSegmentHook, stream_segment
from .tta_results_hook import TTAResultsHook

ADAPTATION_EXAMPLE = ("adaptation = dict(method=dict(type='Tent')) (a "
                      'configs/_base_/tta/*.py file sets one)')


@dataclass
class AdaptationSettings:
    """The config's top-level ``adaptation`` dict, checked.

    Args:
        method (dict): TTA method config, e.g. ``dict(type='EcoTTA')``.
        episodic (bool): Reset the adapted state at every domain boundary
            instead of adapting continually. Defaults to False.
        check_checkpoint (bool): Fail if ``load_from`` does not fit the
            model (shape mismatch, unexpected or missing original keys).
            Defaults to True.
        reset_on_collapse (bool): When a finished domain's predictions have
            collapsed (one class on >= 90% of the pixels, see
            :mod:`mmseg_ecotta.evaluation.results`), reset the method to the
            source state. Collapses are always reported in the results.
            Defaults to False.
        checkpoint_interval (int): Save the adaptation state
            (:mod:`~mmseg_ecotta.engine.adaptation_state`) to
            ``WORK_DIR/state_file`` every this many steps and at every
            domain boundary; 0 disables it. Defaults to 100.
        resume (bool): Continue an interrupted stream from the state file
            in the work dir (``tools/test_tta.py --resume``). Only the same
            run is resumed (same starting weights, model, method, domains
            in order, samples, pipeline and metric), or the same run with
            samples removed from the stream: those are skipped by identity
            and listed in the log and in the results
            (``removed_samples``). Defaults to False.
        state_file (str): Name of the state file in the work dir.
            Defaults to ``'tta_state.pth'``.
        trace (bool): Record what every update does in
            ``WORK_DIR/adaptation_trace.json``
            (:class:`~mmseg_ecotta.engine.AdaptationTraceHook`; it reads
            the run, never changes it). Defaults to False.
    """

    method: dict
    episodic: bool = False
    check_checkpoint: bool = True
    reset_on_collapse: bool = False
    checkpoint_interval: int = 100
    resume: bool = False
    state_file: str = STATE_FILE
    trace: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.method, dict) or 'type' not in self.method:
            raise TypeError(
                f'adaptation.method={self.method!r} must be a config dict '
                "with a type, e.g. adaptation = dict(method=dict("
                "type='EcoTTA'))")
        # mmseg's tools/test.py does not check --cfg-options: lr=inf would
        # fail only at the first results write.
        check_finite_settings(self.method, 'the adaptation settings',
                              'adaptation.method')

    @classmethod
    def from_config(cls,
                    cfg: Any,
                    source: str = 'the config') -> 'AdaptationSettings':
        """Read ``cfg.adaptation`` (a copy: the config is not changed).

        The method config comes back as a plain dict, without the
        ``_scope_`` key mmengine adds to configs inherited from a package.

        Args:
            cfg (Config): A TTA config.
            source (str): Its file, for the error messages.

        Raises:
            ValueError: ``cfg`` has no ``adaptation``.
            KeyError: ``adaptation`` has a key this class does not know;
                the message lists the known ones.
        """
        adaptation = cfg.get('adaptation', None)
        if not isinstance(adaptation, dict):
            raise ValueError(
                f'{source} has no adaptation settings (adaptation='
                f'{adaptation!r}); add e.g. {ADAPTATION_EXAMPLE}')
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(adaptation) - set(known))
        if unknown:
            raise KeyError(f'{source}: unknown adaptation keys {unknown}; '
                           f'known: {known}')
        settings = copy.deepcopy(dict(adaptation))
        if isinstance(settings.get('method'), dict):
            # mmengine's scope of a config inherited through
            # 'mmseg_ecotta::' (registry.py), not a method setting.
            settings['method'] = {
                k: v
                for k, v in settings['method'].items() if k != '_scope_'
            }
        return cls(**settings)


@HOOKS.register_module()
class TestTimeAdaptationHook(Hook):
    """Adapt the model while mmengine's test loop predicts.

    Takes no arguments: it reads the config's top-level ``adaptation``
    (:class:`AdaptationSettings`), so that a method's settings are
    overridden by name (``--cfg-options adaptation.method.optimizer.lr=
    1e-4``), never by the hook's position in ``custom_hooks``.
    ``configs/_base_/tta_runtime.py`` adds it; in any mmseg test config::

        custom_hooks = [dict(type='TestTimeAdaptationHook')]
        adaptation = dict(method=dict(type='Tent'))

    and run ``tools/test_tta.py`` or mmseg's own ``tools/test.py``.

    mmengine's test machinery needs three things handled, all here:

    - ``runner.test()`` loads ``load_from`` *after* building the loop and
      calling ``before_run``, so the method (and any copy of the source
      weights it takes) is built in :meth:`before_test`, after loading;
    - ``TestLoop`` calls ``model.eval()`` and runs each iteration under
      ``torch.no_grad()``: the method's ``test_step`` (installed on the
      model instance, no class is patched) re-enables gradients and sets
      BN behaviour per layer, independent of the module mode;
    - the prediction the metric scores comes from the forward pass that
      produced the adaptation loss.

    It also owns the stream's segments: at each ``(round, domain)``
    boundary it tells every :class:`~mmseg_ecotta.engine.stream.
    StreamSegmentHook` (the results, the export) that the segment ended,
    then resets the method if the settings say so. Results are written by
    a :class:`TTAResultsHook`, added to the runner when the config has
    none.
    """

    priority = 'VERY_HIGH'

    def __init__(self, **kwargs: Any) -> None:
        if kwargs:
            raise TypeError(
                f'TestTimeAdaptationHook takes no arguments, got '
                f'{sorted(kwargs)}: move them into the config\'s top-level '
                f'adaptation = dict(...), e.g. adaptation = dict(method='
                f"dict(type='Tent'), episodic=True), and keep "
                "custom_hooks = [dict(type='TestTimeAdaptationHook')]")
        self.settings: Optional[AdaptationSettings] = None
        self.checkpoint: Optional[StreamCheckpoint] = None
        self.method = None
        self.results: Optional[TTAResultsHook] = None
        self.segments = SegmentTracker()

    @property
    def removed_samples(self) -> List[dict]:
        """Samples removed from the stream at a resume (for the results)."""
        return self.checkpoint.removed if self.checkpoint else []

    # --- set-up ---------------------------------------------------------
    def before_run(self, runner) -> None:
        self.settings = AdaptationSettings.from_config(
            runner.cfg, runner.cfg.filename or 'the config')
        self.checkpoint = StreamCheckpoint(self.settings.state_file,
                                           self.settings.checkpoint_interval)
        # The opt-ins of mmseg_ecotta.safe_load for mmseg's own
        # tools/test.py, which does not read them: runner.test() loads
        # load_from after this.
        apply_config_opt_ins(runner.cfg, runner.cfg.filename or 'the config')
        self.results = next(
            (h for h in runner.hooks if isinstance(h, TTAResultsHook)), None)
        if self.results is None:
            # Inserted before this hook (VERY_HIGH), which shifts this hook
            # one place on: the runner's loop calls this before_run once
            # more, and then finds the hook registered.
            self.results = TTAResultsHook()
            runner.register_hook(self.results)
        self.results.tta = self
        if self.settings.trace and not any(
                type(h).__name__ == 'AdaptationTraceHook'
                for h in runner.hooks):
            # By type name through the registry: the trace hook imports
            # this module. LOW priority: after this hook built the method.
            runner.register_hook(dict(type='AdaptationTraceHook'))

    def before_test(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        load_from = source_checkpoint(runner)
        settings = self.settings
        if settings.check_checkpoint and load_from:
            check_checkpoint_fits(model, load_from)
        # Before the method touches the model: the weights the stream
        # starts from.
        self.checkpoint.start(
            runner, settings.method,
            dict(
                episodic=settings.episodic,
                reset_on_collapse=settings.reset_on_collapse,
                check_checkpoint=settings.check_checkpoint), model,
            settings.resume)
        self.method = build_tta_method(settings.method, model)
        # An instance attribute, see the module docstring.
        model.test_step = self.method.test_step
        if settings.resume:
            self.segments.current = self.checkpoint.resume(runner, self.method)
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        runner.logger.info(
            f'TTA method {type(self.method).__name__}: '
            f'{self.method.num_trainable_params} trainable parameters, '
            f"{'episodic' if settings.episodic else 'continual'}")

    # --- the stream ---------------------------------------------------------
    def before_test_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: dict = None) -> None:
        boundary, ended = self.segments.advance(stream_segment(data_batch))
        if ended is not None:
            # Reported (and exported) before a reset changes the model.
            for hook in runner.hooks:
                if isinstance(hook, StreamSegmentHook):
                    hook.segment_ended(runner, ended)
            if self.settings.episodic or (self.results.collapsed
                                          and self.settings.reset_on_collapse):
                self.method.reset()
            self.method.segment_started()
        if self.checkpoint.due(boundary):
            self.checkpoint.save(self.method, self.segments.current,
                                 runner.test_evaluator.metrics)

    def after_test_iter(self,
                        runner,
                        batch_idx: int,
                        data_batch: dict = None,
                        outputs: list = None) -> None:
        self.checkpoint.advance(len(data_batch['data_samples']))


def adaptation_hook(runner) -> TestTimeAdaptationHook:
    """The runner's :class:`TestTimeAdaptationHook`: the one lookup.

    Raises:
        ValueError: The runner has none; the message shows how to add it.
    """
    for hook in runner.hooks:
        if isinstance(hook, TestTimeAdaptationHook):
            return hook
    raise ValueError(
        'this run has no TestTimeAdaptationHook: add custom_hooks = '
        f"[dict(type='TestTimeAdaptationHook')] and {ADAPTATION_EXAMPLE} "
        'to the config')
