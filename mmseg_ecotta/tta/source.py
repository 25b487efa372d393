"""Source: the frozen source model, no adaptation (the reference row)."""
from ..registry import TTA_METHODS
from .base import TTAMethod


@TTA_METHODS.register_module()
class Source(TTAMethod):
    """No adaptation: BN layers keep the source statistics, nothing trains.
    """
