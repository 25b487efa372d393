from .tta_hook import TestTimeAdaptationHook, check_checkpoint_fits

__all__ = ['TestTimeAdaptationHook', 'check_checkpoint_fits']
