"""Turn any mmseg test run into continual test-time adaptation.

This hook installs the method and resets it; the rest of a run is
delegated: resuming to :class:`~mmseg_ecotta.engine.adaptation_state.
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
from typing import List, Optional

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS

from ..tta import build_tta_method
from ..utils import apply_config_opt_ins, check_finite_settings
from .adaptation_state import STATE_FILE, StreamCheckpoint
from .source_checkpoint import check_checkpoint_fits, source_checkpoint
from .stream import stream_segment
from .tta_results_hook import TTAResultsHook


@HOOKS.register_module()
class TestTimeAdaptationHook(Hook):
    """Adapt the model while mmengine's test loop predicts.

    Add it to ``custom_hooks`` of any mmseg test config and run
    ``tools/test_tta.py`` or mmseg's own ``tools/test.py``::

        custom_hooks = [dict(type='TestTimeAdaptationHook',
                             method=dict(type='Tent'))]

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

    Results are written by a :class:`TTAResultsHook`, added to the runner
    when the config has none.

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
    """

    priority = 'VERY_HIGH'

    def __init__(self,
                 method: dict,
                 episodic: bool = False,
                 check_checkpoint: bool = True,
                 reset_on_collapse: bool = False,
                 checkpoint_interval: int = 100,
                 resume: bool = False,
                 state_file: str = STATE_FILE) -> None:
        if not isinstance(method, dict) or 'type' not in method:
            raise TypeError(
                f'method={method!r} must be a config dict with a type, e.g. '
                "dict(type='EcoTTA')")
        # mmseg's tools/test.py does not check --cfg-options: lr=inf would
        # fail only at the first results write.
        check_finite_settings(method, 'the TestTimeAdaptationHook', 'method')
        self.method_cfg = method
        self.episodic = episodic
        self.check_checkpoint = check_checkpoint
        self.reset_on_collapse = reset_on_collapse
        self.resume = resume
        self.checkpoint = StreamCheckpoint(state_file, checkpoint_interval)
        self.method = None
        self.results: Optional[TTAResultsHook] = None
        self._segment: Optional[tuple] = None

    @property
    def removed_samples(self) -> List[dict]:
        """Samples removed from the stream at a resume (for the results)."""
        return self.checkpoint.removed

    # --- set-up ---------------------------------------------------------
    def before_run(self, runner) -> None:
        # The opt-ins of mmseg_ecotta.safe_load for mmseg's own
        # tools/test.py, which does not read them: runner.test() loads
        # load_from after this.
        apply_config_opt_ins(runner.cfg, runner.cfg.filename or 'the config')
        self.results = next(
            (h for h in runner.hooks if isinstance(h, TTAResultsHook)), None)
        if self.results is None:
            # Inserted before this hook (it reports a domain before the
            # reset here), which shifts this hook one place on: the
            # runner's loop calls this before_run once more, and then
            # finds the hook registered.
            self.results = TTAResultsHook()
            runner.register_hook(self.results)

    def before_test(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        load_from = source_checkpoint(runner)
        if self.check_checkpoint and load_from:
            check_checkpoint_fits(model, load_from)
        # Before the method touches the model: the weights the stream
        # starts from.
        self.checkpoint.start(
            runner, self.method_cfg,
            dict(
                episodic=self.episodic,
                reset_on_collapse=self.reset_on_collapse,
                check_checkpoint=self.check_checkpoint), model, self.resume)
        self.method = build_tta_method(self.method_cfg, model)
        # An instance attribute, see the module docstring.
        model.test_step = self.method.test_step
        if self.resume:
            self._segment = self.checkpoint.resume(runner, self.method)
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        runner.logger.info(
            f'TTA method {type(self.method).__name__}: '
            f'{self.method.num_trainable_params} trainable parameters, '
            f"{'episodic' if self.episodic else 'continual'}")

    # --- the stream ---------------------------------------------------------
    def before_test_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: dict = None) -> None:
        segment = stream_segment(data_batch)
        boundary = segment != self._segment
        if boundary and self._segment is not None:
            # The TTAResultsHook has reported the finished domain.
            collapsed = self.results.collapsed
            if self.episodic or (collapsed and self.reset_on_collapse):
                self.method.reset()
            self.method.segment_started()
        self._segment = segment
        if self.checkpoint.due(boundary):
            self.checkpoint.save(self.method, self._segment,
                                 runner.test_evaluator.metrics)

    def after_test_iter(self,
                        runner,
                        batch_idx: int,
                        data_batch: dict = None,
                        outputs: list = None) -> None:
        self.checkpoint.advance(len(data_batch['data_samples']))
