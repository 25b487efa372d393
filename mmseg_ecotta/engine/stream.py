"""Where a batch is in a continual stream."""
from typing import Any, Optional, Tuple

from mmengine.hooks import Hook

Segment = Tuple[int, str]


def sample_segment(sample: Any) -> Segment:
    """``(round, domain)`` of a data sample; ``(0, 'all')`` outside a stream.
    """
    info = sample.metainfo
    return info.get('round', 0), info.get('domain', 'all')


def stream_segment(data_batch: dict) -> Segment:
    """``(round, domain)`` of a batch (of its first sample)."""
    return sample_segment(data_batch['data_samples'][0])


class SegmentTracker:
    """The ``(round, domain)`` segment a stream is in, and when it changes.

    The one place that decides "did the segment change?"; every hook that
    acts per domain asks it.
    """

    def __init__(self) -> None:
        self.current: Optional[Segment] = None

    def advance(self, segment: Segment) -> Tuple[bool, Optional[Segment]]:
        """Move on to ``segment``.

        Returns:
            tuple: Whether the segment changed (True at the first one too),
            and the segment that just ended (None unless one did).
        """
        if segment == self.current:
            return False, None
        ended, self.current = self.current, segment
        return True, ended


class StreamSegmentHook(Hook):
    """A hook told when a ``(round, domain)`` segment of the stream ends.

    The :class:`~mmseg_ecotta.engine.TestTimeAdaptationHook` calls
    :meth:`segment_ended` of every such hook, in the runner's hook order,
    before the first batch of the next segment and before it resets the
    method there (episodic runs, collapses); for the last segment,
    subclasses act in ``after_test_epoch``.
    """

    def segment_ended(self, runner, segment: Segment) -> None:
        """Act on the finished ``segment``."""
