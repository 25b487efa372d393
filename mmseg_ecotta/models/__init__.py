from .backbones import *  # noqa: F401,F403
from .norm import NORM_MODES, TTABatchNorm2d, convert_batchnorms, set_norm_mode
from .segmentors import *  # noqa: F401,F403

__all__ = [
    'NORM_MODES', 'TTABatchNorm2d', 'convert_batchnorms', 'set_norm_mode'
]
