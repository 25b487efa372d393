from .adapted_model_export_hook import AdaptedModelExportHook
from .source_checkpoint import check_checkpoint_fits, source_checkpoint
from .stream import SegmentTracker, StreamSegmentHook, stream_segment
from .stream_progress_hook import StreamProgressHook, format_progress
from .stream_visualization_hook import StreamVisualizationHook
from .tta_hook import (AdaptationSettings, TestTimeAdaptationHook,
                       adaptation_hook)
from .tta_results_hook import TTAResultsHook

__all__ = [
    'AdaptationSettings', 'TestTimeAdaptationHook', 'adaptation_hook',
    'SegmentTracker', 'StreamSegmentHook', 'TTAResultsHook',
    'check_checkpoint_fits', 'source_checkpoint', 'stream_segment',
    'AdaptedModelExportHook', 'StreamProgressHook', 'format_progress',
    'StreamVisualizationHook'
]
