"""A progress bar over the stream, with the current domain's mIoU."""
import sys
import time
from typing import IO, Optional

import numpy as np
from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from ..evaluation import ContinualIoUMetric
from .stream import SegmentTracker, stream_segment


def format_progress(done: int,
                    total: int,
                    elapsed: float,
                    segment: str = '',
                    miou: Optional[float] = None,
                    width: int = 30) -> str:
    """One line of the progress bar.

    Args:
        done (int): Images processed so far.
        total (int): Images in the whole stream.
        elapsed (float): Seconds since the stream started.
        segment (str): The current (round, domain), e.g. ``'round 2 fog'``.
        miou (float, optional): Running mIoU (%) of the current segment.
        width (int): Characters of the bar itself. Defaults to 30.

    Returns:
        str: e.g. ``'[#####-----] 12/48 25% 0:07 ETA 0:21 | round 1 night
        mIoU 41.2'``.
    """
    fraction = done / total if total else 1.0
    filled = int(width * fraction)
    eta = elapsed / done * (total - done) if done else float('nan')
    line = (f"[{'#' * filled}{'-' * (width - filled)}] {done}/{total} "
            f'{fraction:4.0%} {_clock(elapsed)} ETA {_clock(eta)}')
    if segment:
        line += f' | {segment}'
    if miou is not None and not np.isnan(miou):
        line += f' mIoU {miou:.1f}'
    return line


def _clock(seconds: float) -> str:
    if np.isnan(seconds):
        return '-:--'
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return (f'{hours}:{minutes:02d}:{secs:02d}'
            if hours else f'{minutes}:{secs:02d}')


@HOOKS.register_module()
class StreamProgressHook(Hook):
    """Progress bar with ETA and the running mIoU of the current domain.

    Rewrites one terminal line per image (``\\r``) and ends the line at
    every domain boundary, so each finished (round, domain) stays on
    screen with its mIoU. Quiet when the stream is not a terminal, so CI
    logs and redirected output stay readable (mmengine's logger still
    reports every domain there). ``tools/test_tta.py`` adds it when its
    stdout is a terminal.

    The running mIoU comes from the areas that
    :class:`~mmseg_ecotta.evaluation.ContinualIoUMetric` accumulated for
    the current segment (its last entry; in a distributed run, the
    entries of the segment's images on this rank).

    Args:
        width (int): Characters of the bar. Defaults to 30.
        stream (IO, optional): Where to draw. Defaults to ``sys.stdout``.
    """

    # Ahead of the TTA hook (VERY_HIGH), so that the bar's line ends before
    # that hook logs a finished domain.
    priority = 'HIGHEST'

    def __init__(self, width: int = 30, stream: Optional[IO] = None) -> None:
        self.width = width
        self.stream = stream

    def before_test(self, runner) -> None:
        # Writing to the terminal directly, not through the logger: a bar
        # redrawn in place is not a log record.
        self._out = self.stream or sys.stdout
        self.enabled = bool(getattr(self._out, 'isatty', lambda: False)())
        self.metric = next((m for m in runner.test_evaluator.metrics
                            if isinstance(m, ContinualIoUMetric)), None)
        self.total = len(runner.test_dataloader)
        self._start = time.perf_counter()
        self.segments = SegmentTracker()

    def before_test_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: dict = None) -> None:
        if not self.enabled:
            return
        _, ended = self.segments.advance(stream_segment(data_batch))
        if ended is not None:
            self._out.write('\n')  # keep the finished domain's line

    def after_test_iter(self,
                        runner,
                        batch_idx: int,
                        data_batch: dict = None,
                        outputs=None) -> None:
        if not self.enabled:
            return
        segment = self.segments.current
        line = format_progress(batch_idx + 1, self.total,
                               time.perf_counter() - self._start,
                               f'round {segment[0] + 1} {segment[1]}',
                               self._running_miou(segment), self.width)
        self._out.write('\r' + line)
        self._out.flush()

    def after_test_epoch(self, runner, metrics: dict = None) -> None:
        if self.enabled and self.segments.current is not None:
            self._out.write('\n')
            self._out.flush()

    def _running_miou(self, segment: tuple) -> Optional[float]:
        """mIoU (%) of the current segment's images processed so far."""
        if self.metric is None:
            return None
        total = None
        for round_idx, domain, areas, _ in reversed(self.metric.results):
            if (round_idx, domain) != segment:
                break
            total = areas if total is None else total + areas
        if total is None:
            return None
        intersect, union = total[0], total[1]
        valid = union > 0
        if not valid.any():
            return None
        return float((intersect[valid] / union[valid]).mean() * 100)
