"""Results and costs of a test-time adaptation run, per domain."""
import os.path as osp
from typing import Optional

import torch
from mmengine.logging import MMLogger
from mmseg.registry import HOOKS

from ..evaluation import (ContinualIoUMetric, format_class_table,
                          format_round_table, write_json_atomic)
from ..tta import TTAMethod
from ..utils import remove_stale_temporaries
from .source_checkpoint import source_checkpoint
from .stream import StreamSegmentHook


@HOOKS.register_module()
class TTAResultsHook(StreamSegmentHook):
    """Log each finished domain and rewrite the results file.

    The results (per-domain, per-round mIoU from ``ContinualIoUMetric``,
    the method's settings, counters and costs) are rewritten atomically
    after every domain, so a run that dies keeps what it measured. The
    :class:`~mmseg_ecotta.engine.TestTimeAdaptationHook` adds this hook to
    the runner when the config has none (give it in ``custom_hooks`` to set
    its options) and tells it when a domain ends, before any reset.

    Args:
        results_file (str): JSON file in the work dir. Defaults to
            ``'tta_results.json'``.
    """

    def __init__(self, results_file: str = 'tta_results.json') -> None:
        self.results_file = results_file
        # The TestTimeAdaptationHook reported on; it sets itself here.
        self.tta = None
        self.metric: Optional[ContinualIoUMetric] = None
        self.collapsed = False  # whether the last reported domain collapsed

    def before_test(self, runner) -> None:
        if self.tta is None:
            raise ValueError(
                'TTAResultsHook reports a TestTimeAdaptationHook: add '
                "custom_hooks = [dict(type='TestTimeAdaptationHook')] and "
                "adaptation = dict(method=dict(type='Tent')) to the config")
        # What a kill during a results write left (the results are intact).
        results = osp.join(runner.work_dir, self.results_file)
        for tmp in remove_stale_temporaries(results):
            runner.logger.info(f'removed {tmp}, left by an interrupted '
                               'results write')
        self.metric = next((m for m in runner.test_evaluator.metrics
                            if isinstance(m, ContinualIoUMetric)), None)
        if self.metric is None:
            MMLogger.get_current_instance().warning(
                'no ContinualIoUMetric in test_evaluator: per-domain results '
                "will not be written; use test_evaluator = dict(type="
                "'ContinualIoUMetric')")

    def segment_ended(self, runner, segment: tuple) -> None:
        self.collapsed = self._report_segment(runner)

    def after_test_epoch(self, runner, metrics: dict = None) -> None:
        summary = self.metric.last_summary if self.metric else None
        if summary is None:
            return
        self._log_segment(runner, summary['segments'][-1])
        self._write(runner, summary, complete=True)
        name = type(self.tta.method).__name__
        runner.logger.info('\n' + format_class_table(
            summary, f'per-class IoU (%), mean over rounds, {name}'))
        runner.logger.info('\n' +
                           format_round_table(summary, f'mIoU (%), {name}'))

    def _report_segment(self, runner) -> bool:
        """Log the finished domain, rewrite the results file.

        Returns:
            bool: Whether the finished domain's predictions collapsed.
        """
        if self.metric is None or not self.metric.results:
            return False
        summary = self.metric.summary()
        last = summary['segments'][-1]
        self._log_segment(
            runner, last, reset=self.tta.settings.reset_on_collapse)
        self._write(runner, summary, complete=False)
        return last['collapsed']

    def _log_segment(self, runner, segment: dict, reset: bool = False) -> None:
        """One line per finished domain; a warning if it collapsed."""
        runner.logger.info(
            f"round {segment['round'] + 1} {segment['domain']}: mIoU "
            f"{segment['mIoU']:.2f} over {segment['num_images']} images "
            f"({cost(self.tta.method)['seconds_per_image']:.3f} s/image)")
        if segment['collapsed']:
            runner.logger.warning(
                f"predictions collapsed in round {segment['round'] + 1} "
                f"{segment['domain']}: {segment['dominant_fraction']:.0%} of "
                f"the pixels are {segment['dominant_class']}" +
                ('; resetting to the source state' if reset else ''))

    def _write(self, runner, summary: dict, complete: bool) -> None:
        method = self.tta.method
        data = dict(
            method=type(method).__name__,
            method_cfg=self.tta.settings.method,
            method_settings=method.settings(),
            episodic=self.tta.settings.episodic,
            complete=complete,
            config=runner.cfg.filename,
            checkpoint=source_checkpoint(runner),
            cost=cost(method),
            adaptation=dict(
                method.stats,
                images=method.images,
                update_fraction=update_fraction(method.stats)),
            removed_samples=self.tta.removed_samples,
            **summary)
        write_json_atomic(data, osp.join(runner.work_dir, self.results_file))


def cost(method: TTAMethod) -> dict:
    """Seconds per image, trainable parameters and peak memory.

    Args:
        method (TTAMethod): The method of the run.
    """
    if torch.cuda.is_available():
        peak, kind = torch.cuda.max_memory_allocated(), 'cuda_peak_allocated'
    else:
        report = method.saved_tensors
        peak = report.activation_bytes if report else 0
        kind = 'cpu_activations_saved_for_backward'
    return dict(
        seconds_per_image=method.seconds / max(method.images, 1),
        trainable_params=method.num_trainable_params,
        peak_memory_bytes=peak,
        peak_memory_kind=kind)


def update_fraction(stats: dict) -> Optional[float]:
    """Share of adaptation steps that updated the weights.

    At batch size 1, the fraction of images the method adapted on (EATA's
    filters skip some); None for methods that train nothing.
    """
    return stats['updates'] / stats['steps'] if stats['steps'] else None
