"""Where a batch is in a continual stream."""
from typing import Optional, Tuple

from mmengine.hooks import Hook


def stream_segment(data_batch: dict) -> Tuple[int, str]:
    """``(round, domain)`` of a batch; ``(0, 'all')`` outside a stream."""
    info = data_batch['data_samples'][0].metainfo
    return info.get('round', 0), info.get('domain', 'all')


class StreamSegmentHook(Hook):
    """A hook that acts when a ``(round, domain)`` of the stream ends.

    :meth:`segment_ended` runs before the first batch of the next segment
    (for the last one, subclasses act in ``after_test_epoch``).
    """

    def __init__(self) -> None:
        self._segment: Optional[Tuple[int, str]] = None

    def before_test_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: dict = None) -> None:
        segment = stream_segment(data_batch)
        if segment != self._segment and self._segment is not None:
            self.segment_ended(runner, self._segment)
        self._segment = segment

    def segment_ended(self, runner, segment: Tuple[int, str]) -> None:
        """Act on the finished ``segment``."""
