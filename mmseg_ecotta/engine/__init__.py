from .adapted_model_export_hook import AdaptedModelExportHook
from .stream_progress_hook import StreamProgressHook, format_progress
from .stream_visualization_hook import StreamVisualizationHook
from .tta_hook import TestTimeAdaptationHook, check_checkpoint_fits

__all__ = [
    'TestTimeAdaptationHook', 'check_checkpoint_fits',
    'AdaptedModelExportHook', 'StreamProgressHook', 'format_progress',
    'StreamVisualizationHook'
]
