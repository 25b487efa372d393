"""EcoTTA: meta networks adapted by confident entropy + self-distillation.

Song et al., EcoTTA: Memory-Efficient Continual Test-time Adaptation via
Self-distilled Regularization, CVPR 2023 (https://arxiv.org/abs/2303.01904)
"""
import torch.nn as nn
from torch import Tensor

from ..models.norm import check_norm_mode, convert_batchnorms
from ..models.segmentors import is_meta_name
from ..registry import TTA_METHODS
from .base import NamedParams, TTAMethod
from .losses import (confident_entropy_loss, entropy_threshold,
                     self_distillation_loss)

# SGD with momentum as in public reimplementations (the paper's
# classification setting); no official code exists.
ECOTTA_OPTIMIZER = dict(type='SGD', lr=5e-3, momentum=0.9)


@TTA_METHODS.register_module()
class EcoTTA(TTAMethod):
    """Adapt only the meta networks of a :class:`MetaResNet` backbone.

    Loss: ``mean_{H < E0} H + lambda * sum_k |x_k - f_k(x_{k-1})|_1`` with
    ``E0 = e0_factor * ln C``. One forward: the frozen partition outputs the
    regulariser needs come out of the same pass.

    Args:
        model (nn.Module): A :class:`MetaEncoderDecoder`.
        frozen_norm_mode (str): How the frozen network's BN layers
            normalise while adapting: ``'source'`` (stored statistics,
            exact gradient), ``'batch'`` (test-batch statistics, exact
            gradient, one activation kept per BN) or ``'batch_const'``
            (test-batch statistics held constant in the backward: nothing
            kept). Defaults to ``'batch_const'``, chosen on a held-out
            synthetic stream (seed 1; README, "EcoTTA's frozen BN layers"):
            it recovers most of what batch statistics gain over source
            statistics while keeping the backward activation-free.
        reg_weight (float): lambda of the regulariser. Defaults to 0.25
            (public reimplementations; the paper's value is not public).
        e0_factor (float): ``E0 = e0_factor * ln C``. Defaults to 0.4
            (EATA's threshold, used by EcoTTA).
        optimizer (dict): Optimizer config. Defaults to SGD, lr 5e-3,
            momentum 0.9.
        lean_backward (bool): Keep no activations in the frozen layers for
            backward. Defaults to True.
        **kwargs: Passed to :class:`TTAMethod`.
    """

    def __init__(self,
                 model: nn.Module,
                 frozen_norm_mode: str = 'batch_const',
                 reg_weight: float = 0.25,
                 e0_factor: float = 0.4,
                 optimizer: dict = ECOTTA_OPTIMIZER,
                 lean_backward: bool = True,
                 **kwargs) -> None:
        if not hasattr(getattr(model, 'backbone', None), 'meta_nets'):
            raise TypeError(
                'EcoTTA needs meta networks: use a config whose model is '
                "MetaEncoderDecoder with backbone type 'MetaResNetV1c' and a "
                'warmed-up checkpoint (configs/warmup/)')
        self.frozen_norm_mode = check_norm_mode(frozen_norm_mode)
        self.reg_weight = reg_weight
        self.threshold = entropy_threshold(model.num_classes, e0_factor)
        super().__init__(
            model, optimizer=optimizer, lean_backward=lean_backward, **kwargs)
        model.backbone.record_partition_outputs = True

    def configure_norms(self, model: nn.Module) -> None:
        """Meta BNs use batch statistics; frozen BNs follow the switch."""
        convert_batchnorms(model, self.frozen_norm_mode, skip=is_meta_name)
        convert_batchnorms(model.backbone.meta_nets,
                           'batch')  # the meta networks' BNs

    def collect_params(self, model: nn.Module) -> NamedParams:
        """Meta-network parameters only; the original network is frozen."""
        return [(n, p) for n, p in model.named_parameters() if is_meta_name(n)]

    def loss(self, logits: Tensor) -> Tensor:
        """Confident-pixel entropy plus the self-distilled regulariser."""
        pairs = self.model.backbone.pop_partition_outputs()
        return (confident_entropy_loss(logits, self.threshold) +
                self.reg_weight * self_distillation_loss(pairs))
