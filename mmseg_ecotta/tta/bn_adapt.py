"""BN adapt: normalise with test-batch statistics, no gradients.

Schneider et al., Improving robustness against common corruptions by
covariate shift adaptation, NeurIPS 2020 (https://arxiv.org/abs/2006.16971)
"""
import torch.nn as nn

from ..models.norm import convert_batchnorms
from ..registry import TTA_METHODS
from .base import TTAMethod


@TTA_METHODS.register_module()
class BNAdapt(TTAMethod):
    """Replace the source BN statistics by each test batch's statistics."""

    def configure_norms(self, model: nn.Module) -> None:
        """Every BN layer uses batch statistics; stored ones never move."""
        convert_batchnorms(model, 'batch')
