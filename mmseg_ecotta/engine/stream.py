"""Where a batch is in a continual stream."""
from typing import Tuple


def stream_segment(data_batch: dict) -> Tuple[int, str]:
    """``(round, domain)`` of a batch; ``(0, 'all')`` outside a stream."""
    info = data_batch['data_samples'][0].metainfo
    return info.get('round', 0), info.get('domain', 'all')
