from .continual_iou_metric import ContinualIoUMetric
from .results import format_round_table, summarize_stream, write_json_atomic

__all__ = [
    'ContinualIoUMetric', 'format_round_table', 'summarize_stream',
    'write_json_atomic'
]
