"""TENT: test entropy minimisation of the BN affine parameters.

Wang et al., Tent: Fully Test-time Adaptation by Entropy Minimization,
ICLR 2021 (https://arxiv.org/abs/2006.10726); code after DequanWang/tent.
"""
import torch.nn as nn
from torch import Tensor

from ..models.norm import convert_batchnorms, norm_affine_params
from ..registry import TTA_METHODS
from .base import NamedParams, TTAMethod
from .losses import mean_entropy_loss


@TTA_METHODS.register_module()
class Tent(TTAMethod):
    """Entropy minimisation of BN scale and shift, batch statistics.

    The image-pool BN of DeepLabV3/V3+ sees one value per channel at batch
    size 1; it falls back to its stored statistics (its affine parameters
    still adapt) instead of crashing, see :mod:`mmseg_ecotta.models.norm`.
    Its optimizer (CoTTA's Adam settings) is in ``configs/_base_/tta/tent.py``.
    """

    def configure_norms(self, model: nn.Module) -> None:
        """Batch statistics with the exact gradient, as tent's train mode."""
        convert_batchnorms(model, 'batch')

    def collect_params(self, model: nn.Module) -> NamedParams:
        """BN scale and shift only: tent's choice of a small, stable set."""
        return norm_affine_params(model)

    def loss(self, logits: Tensor, inputs: Tensor) -> Tensor:
        """Softmax entropy averaged over every pixel."""
        return mean_entropy_loss(logits)
