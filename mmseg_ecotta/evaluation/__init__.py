from .continual_iou_metric import ContinualIoUMetric
from .results import (format_class_table, format_round_table, summarize_stream,
                      write_json_atomic)

__all__ = [
    'ContinualIoUMetric', 'format_class_table', 'format_round_table',
    'summarize_stream', 'write_json_atomic'
]
