"""Turn any mmseg test run into continual test-time adaptation."""
import os.path as osp
from typing import List, Optional, Tuple

import torch
from mmengine.dist import get_world_size
from mmengine.hooks import Hook
from mmengine.logging import MMLogger
from mmengine.model import is_model_wrapper
from mmengine.runner.checkpoint import _load_checkpoint
from mmseg.registry import HOOKS

from ..evaluation import (ContinualIoUMetric, format_class_table,
                          format_round_table, write_json_atomic)
from ..models.segmentors import is_meta_name
from ..safe_load import allow_unsafe_load
from ..tta import build_tta_method
from .adaptation_state import (STATE_FILE, STATE_VERSION, capture_rng_state,
                               dataloader_from, load_state, metric_results,
                               remove_stale_temporaries,
                               restore_metric_results, restore_rng_state,
                               save_state_atomic)
from .run_identity import removed_samples, resume_position, run_fingerprint


def stream_segment(data_batch: dict) -> Tuple[int, str]:
    """``(round, domain)`` of a batch; ``(0, 'all')`` outside a stream."""
    info = data_batch['data_samples'][0].metainfo
    return info.get('round', 0), info.get('domain', 'all')


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

    Args:
        method (dict): TTA method config, e.g. ``dict(type='EcoTTA')``.
        episodic (bool): Reset the adapted state at every domain boundary
            instead of adapting continually. Defaults to False.
        results_file (str): JSON file in the work dir, rewritten after
            every domain so a run that dies keeps what it measured.
            Defaults to ``'tta_results.json'``.
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
                 results_file: str = 'tta_results.json',
                 check_checkpoint: bool = True,
                 reset_on_collapse: bool = False,
                 checkpoint_interval: int = 100,
                 resume: bool = False,
                 state_file: str = STATE_FILE) -> None:
        if not isinstance(method, dict) or 'type' not in method:
            raise TypeError(
                f'method={method!r} must be a config dict with a type, e.g. '
                "dict(type='EcoTTA')")
        self.method_cfg = method
        self.episodic = episodic
        self.results_file = results_file
        self.check_checkpoint = check_checkpoint
        self.reset_on_collapse = reset_on_collapse
        if not isinstance(checkpoint_interval, int) or checkpoint_interval < 0:
            raise ValueError(
                f'checkpoint_interval={checkpoint_interval!r}: give a number '
                'of steps >= 0 (0 disables the adaptation state)')
        self.checkpoint_interval = checkpoint_interval
        self.resume = resume
        self.state_file = state_file
        self.method = None
        self._segment: Optional[tuple] = None
        self._position = 0  # batches consumed
        self._consumed = 0  # samples consumed
        self._last_saved = 0
        self._rng: Optional[dict] = None
        self._fingerprint: Optional[dict] = None
        self._removed: List[dict] = []  # samples removed at a resume

    # --- set-up ---------------------------------------------------------
    def before_run(self, runner) -> None:
        # The opt-in of mmseg_ecotta.safe_load for mmseg's own tools/test.py,
        # which does not read it: runner.test() loads load_from after this.
        if runner.cfg.get('unsafe_load', False) is True:
            allow_unsafe_load(
                f'unsafe_load = True in {runner.cfg.filename or "the config"}')

    def before_test(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        if self.check_checkpoint and runner._load_from:
            check_checkpoint_fits(model, runner._load_from)
        loader = runner.test_loop.dataloader
        if self._saving or self.resume:
            # Before the method touches the model: the weights the stream
            # starts from.
            self._fingerprint = run_fingerprint(runner.cfg, self.method_cfg,
                                                self.episodic, model,
                                                loader.dataset,
                                                loader.batch_size)
        self.method = build_tta_method(self.method_cfg, model)
        # An instance attribute: mmengine's loop (and any model wrapper,
        # which delegates to ``module.test_step``) now calls the method.
        model.test_step = self.method.test_step
        self.metric = next((m for m in runner.test_evaluator.metrics
                            if isinstance(m, ContinualIoUMetric)), None)
        if self.metric is None:
            MMLogger.get_current_instance().warning(
                'no ContinualIoUMetric in test_evaluator: per-domain results '
                "will not be written; use test_evaluator = dict(type="
                "'ContinualIoUMetric')")
        if self._saving:
            # What a kill during a state write left (the state is intact).
            for tmp in remove_stale_temporaries(
                    osp.join(runner.work_dir, self.state_file)):
                runner.logger.info(f'removed {tmp}, left by an interrupted '
                                   'state write')
        if self.resume:
            self._resume(runner)
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
            collapsed = self._report_segment(runner)
            if self.episodic or (collapsed and self.reset_on_collapse):
                self.method.reset()
        self._segment = segment
        if self._saving and self._position > self._last_saved and (
                boundary or self._position % self.checkpoint_interval == 0):
            self._save_state(runner)

    def after_test_iter(self,
                        runner,
                        batch_idx: int,
                        data_batch: dict = None,
                        outputs: list = None) -> None:
        self._position += 1
        self._consumed += len(data_batch['data_samples'])
        if self._saving:
            # The RNG as the next batch starts: a state saved before that
            # batch (in before_test_iter) replays it from here.
            self._rng = capture_rng_state()

    # --- resume -------------------------------------------------------------
    @property
    def _saving(self) -> bool:
        # One process sees one shard of the stream and of the metric: the
        # state of a distributed run is not one file (not supported).
        return self.checkpoint_interval > 0 and get_world_size() == 1

    def _save_state(self, runner) -> None:
        """Write everything the rest of the stream depends on."""
        method = self.method
        state = dict(
            version=STATE_VERSION,
            fingerprint=self._fingerprint,
            position=self._position,
            consumed=self._consumed,
            removed_samples=self._removed,
            segment=self._segment,
            method=method.state_dict(),
            rng=self._rng,
            metric_results=metric_results(runner.test_evaluator.metrics))
        save_state_atomic(state, osp.join(runner.work_dir, self.state_file))
        self._last_saved = self._position

    def _resume(self, runner) -> None:
        """Restore the saved state and start the loop at its position."""
        path = osp.join(runner.work_dir, self.state_file)
        state = load_state(path, self._fingerprint)
        method = self.method
        method.load_state_dict(state['method'])
        restore_metric_results(runner.test_evaluator.metrics,
                               state['metric_results'])
        self._segment = state['segment']
        self._position = self._last_saved = state['position']
        self._rng = state['rng']
        restore_rng_state(state['rng'])
        loop = runner.test_loop
        saved = state['fingerprint']
        removed = removed_samples(saved, self._fingerprint)
        self._consumed = resume_position(saved, self._fingerprint,
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
        self._removed = state['removed_samples'] + removed
        # mmengine's TestLoop iterates ``self.dataloader`` after the
        # before_test hooks: swap in one that starts at the position.
        loop.dataloader = dataloader_from(loop.dataloader, self._consumed)
        runner.logger.info(f'resumed from {path} at batch {self._position} of '
                           f'{self._position + len(loop.dataloader)} (round '
                           f'{self._segment[0] + 1}, {self._segment[1]})')

    def after_test_epoch(self, runner, metrics: dict = None) -> None:
        summary = self.metric.last_summary if self.metric else None
        if summary is None:
            return
        self._log_segment(runner, summary['segments'][-1])
        self._write(runner, summary, complete=True)
        name = type(self.method).__name__
        runner.logger.info('\n' + format_class_table(
            summary, f'per-class IoU (%), mean over rounds, {name}'))
        runner.logger.info('\n' +
                           format_round_table(summary, f'mIoU (%), {name}'))

    # --- results ------------------------------------------------------------
    def _report_segment(self, runner) -> bool:
        """Log the finished domain, rewrite the results file.

        Returns:
            bool: Whether the finished domain's predictions collapsed.
        """
        if self.metric is None or not self.metric.results:
            return False
        summary = self.metric.summary()
        last = summary['segments'][-1]
        self._log_segment(runner, last, reset=self.reset_on_collapse)
        self._write(runner, summary, complete=False)
        return last['collapsed']

    def _log_segment(self, runner, segment: dict, reset: bool = False) -> None:
        """One line per finished domain; a warning if it collapsed."""
        runner.logger.info(
            f"round {segment['round'] + 1} {segment['domain']}: mIoU "
            f"{segment['mIoU']:.2f} over {segment['num_images']} images "
            f'({self.method.seconds / max(self.method.images, 1):.3f} '
            's/image)')
        if segment['collapsed']:
            runner.logger.warning(
                f"predictions collapsed in round {segment['round'] + 1} "
                f"{segment['domain']}: {segment['dominant_fraction']:.0%} of "
                f"the pixels are {segment['dominant_class']}" +
                ('; resetting to the source state' if reset else ''))

    def cost(self) -> dict:
        """Seconds per image, trainable parameters and peak memory."""
        if torch.cuda.is_available():
            peak, kind = torch.cuda.max_memory_allocated(), \
                'cuda_peak_allocated'
        else:
            report = self.method.saved_tensors
            peak = report.activation_bytes if report else 0
            kind = 'cpu_activations_saved_for_backward'
        return dict(
            seconds_per_image=self.method.seconds / max(self.method.images, 1),
            trainable_params=self.method.num_trainable_params,
            peak_memory_bytes=peak,
            peak_memory_kind=kind)

    def _write(self, runner, summary: dict, complete: bool) -> None:
        data = dict(
            method=type(self.method).__name__,
            method_cfg=self.method_cfg,
            method_settings=self.method.settings(),
            episodic=self.episodic,
            complete=complete,
            config=runner.cfg.filename,
            checkpoint=runner._load_from,
            cost=self.cost(),
            adaptation=dict(
                self.method.stats,
                images=self.method.images,
                update_fraction=update_fraction(self.method.stats)),
            removed_samples=self._removed,
            **summary)
        write_json_atomic(data, osp.join(runner.work_dir, self.results_file))


def check_sequential(loader) -> None:
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


def update_fraction(stats: dict) -> Optional[float]:
    """Share of adaptation steps that updated the weights.

    At batch size 1, the fraction of images the method adapted on (EATA's
    filters skip some); None for methods that train nothing.
    """
    return stats['updates'] / stats['steps'] if stats['steps'] else None


def check_checkpoint_fits(model: torch.nn.Module, filename: str) -> None:
    """Raise if a checkpoint was made for another architecture.

    mmengine's runner loads ``load_from`` non-strictly and only warns, which
    would silently evaluate a half-random model. Missing meta-network keys
    are allowed (an un-warmed EcoTTA model) and logged.
    """
    ckpt = _load_checkpoint(filename, map_location='cpu')
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else {}
    state = {
        k[7:] if k.startswith('module.') else k: v
        for k, v in state.items()
    }
    own = model.state_dict()
    mismatched = [
        f'{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}'
        for k, v in state.items() if k in own and own[k].shape != v.shape
    ]
    unexpected = [k for k in state if k not in own]
    missing = [k for k in own if k not in state]
    missing_original = [k for k in missing if not is_meta_name(k)]
    if mismatched or unexpected or missing_original:
        raise ValueError(
            f'checkpoint {filename} does not fit the model of this config: '
            f'{len(mismatched)} shape mismatches {mismatched[:3]}, '
            f'{len(unexpected)} unexpected keys {unexpected[:3]}, '
            f'{len(missing_original)} missing keys {missing_original[:3]}. '
            'Pass the checkpoint trained for this config (or the config '
            'matching this checkpoint).')
    if missing:
        MMLogger.get_current_instance().warning(
            f'checkpoint {filename} has no meta-network weights '
            f'({len(missing)} keys): the meta networks are not warmed up '
            '(see configs/warmup/)')
