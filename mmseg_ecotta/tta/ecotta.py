"""EcoTTA: meta networks adapted by confident entropy + self-distillation.

Song et al., EcoTTA: Memory-Efficient Continual Test-time Adaptation via
Self-distilled Regularization, CVPR 2023 (https://arxiv.org/abs/2303.01904)
"""
from typing import Any, Dict, Optional, Tuple

import torch.nn as nn
from torch import Tensor

from ..models.backbones.meta_net import PartitionPairs
from ..models.segmentors import is_meta_name
from ..registry import TTA_METHODS
from .base import NamedParams, TTAMethod
from .losses import (class_balanced_confident_entropy, confident_entropy_loss,
                     entropy_threshold, self_distillation_loss)

# Which meta parameters adapt (EcoTTA's ``adapt``).
ADAPT = ('all', 'norm')
# How confident pixels are averaged into the entropy term.
ENTROPY_AVERAGES = {
    'pixel': confident_entropy_loss,
    'class': class_balanced_confident_entropy
}


@TTA_METHODS.register_module()
class EcoTTA(TTAMethod):
    """Adapt only the meta networks of a meta backbone.

    The backbone is :class:`MetaResNet` or :class:`MetaMixVisionTransformer`
    (anything with ``meta_nets`` and ``recording_partitions``).

    Loss: ``mean_{H < E0} H + lambda * sum_k |x_k - f_k(x_{k-1})|_1`` with
    ``E0 = e0_factor * ln C``. One forward: the frozen partition outputs the
    regulariser needs come out of the same pass.

    How the BN layers normalise is the model's (:class:`MetaEncoderDecoder`),
    set in the model config, never here. The frozen ones by
    ``frozen_norm_mode``: ``'source'`` (stored statistics, exact gradient),
    ``'batch'`` (test-batch statistics, exact gradient, one activation kept
    per BN) or ``'batch_const'`` (test-batch statistics held constant in
    the backward: nothing kept); the heads' as ``head_norm_mode`` says,
    ``frozen_norm_mode`` unless set. The meta ones by ``meta_norm_mode``:
    ``'sample'`` in the shipped configs (each test image's statistics, as in
    the warm-up).

    Args:
        model (nn.Module): A :class:`MetaEncoderDecoder`.
        reg_weight (float): lambda of the regulariser. Defaults to 0.25
            (public reimplementations; the paper's value is not public).
        e0_factor (float): ``E0 = e0_factor * ln C``. Defaults to 0.4
            (EATA's threshold, used by EcoTTA).
        optimizer (dict): Optimizer config; ours (SGD, lr 5e-4, momentum
            0.9, and why) is in ``configs/_base_/tta/ecotta.py``.
        per_partition_regulariser (bool): Each regulariser term trains only
            its own meta network (detached partition inputs, as in the
            authors' sample). Defaults to False (gradients reach earlier
            meta networks too).
        adapt (str): Which meta parameters adapt: ``'all'`` (the paper),
            ``'norm'`` (the affine parameters of the meta networks' BN
            layers only; their convolutions keep their warmed-up weights).
            Defaults to ``'all'``.
        entropy_average (str): ``'pixel'`` (the paper: mean over the
            confident pixels) or ``'class'`` (mean over the predicted classes
            of each class's mean, :func:`class_balanced_confident_entropy`).
            Defaults to ``'pixel'``.
        lean_backward (bool): Keep no activations in the frozen layers for
            backward. Defaults to True.
        **kwargs: Passed to :class:`TTAMethod`.
    """

    def __init__(self,
                 model: nn.Module,
                 reg_weight: float = 0.25,
                 e0_factor: float = 0.4,
                 optimizer: Optional[dict] = None,
                 lean_backward: bool = True,
                 per_partition_regulariser: bool = False,
                 adapt: str = 'all',
                 entropy_average: str = 'pixel',
                 **kwargs) -> None:
        for key in ('frozen_norm_mode', 'head_norm_mode', 'meta_norm_mode'):
            if key in kwargs:
                raise TypeError(
                    f'EcoTTA takes {key} from the model: set '
                    f'model.{key}={kwargs[key]!r} in the config (or '
                    f'--cfg-options model.{key}=...) instead of '
                    f'adaptation.method.{key}')
        if not hasattr(getattr(model, 'backbone', None), 'meta_nets'):
            raise TypeError(
                'EcoTTA needs meta networks: use a config whose model is '
                "MetaEncoderDecoder with backbone type 'MetaResNetV1c' (or "
                "'MetaMixVisionTransformer') and a "
                'warmed-up checkpoint (configs/ecotta/ecotta-warmup_*.py)')
        if getattr(model, 'meta_norm_mode', None) is None:
            raise ValueError(
                'EcoTTA needs model.meta_norm_mode: plain BN layers would '
                "normalise the meta networks by their running statistics; set "
                "model.meta_norm_mode='sample' (each test image's statistics, "
                "as the shipped configs) or 'source' (the running ones)")
        if adapt not in ADAPT:
            raise ValueError(f'adapt={adapt!r}: choose one of {list(ADAPT)}')
        self.adapt = adapt
        if entropy_average not in ENTROPY_AVERAGES:
            raise ValueError(f'entropy_average={entropy_average!r}: choose '
                             f'one of {list(ENTROPY_AVERAGES)}')
        self.entropy_average = entropy_average
        self.reg_weight = reg_weight
        self.per_partition_regulariser = per_partition_regulariser
        self.threshold = entropy_threshold(model.num_classes, e0_factor)
        super().__init__(
            model, optimizer=optimizer, lean_backward=lean_backward, **kwargs)

    @property
    def frozen_norm_mode(self) -> str:
        """How the frozen BN layers normalise: the model's setting."""
        return self.model.frozen_norm_mode

    @property
    def head_norm_mode(self) -> str:
        """How the heads' frozen BN layers normalise: the model's setting."""
        return self.model.head_norm_mode

    @property
    def meta_norm_mode(self) -> str:
        """How the meta BN layers normalise: the model's setting."""
        return self.model.meta_norm_mode

    def settings(self) -> dict:
        """The BN modes (from the model) and the loss constants."""
        return dict(
            frozen_norm_mode=self.frozen_norm_mode,
            head_norm_mode=self.head_norm_mode,
            reg_weight=self.reg_weight,
            entropy_threshold=self.threshold,
            meta_norm_mode=self.meta_norm_mode,
            per_partition_regulariser=self.per_partition_regulariser,
            adapt=self.adapt,
            entropy_average=self.entropy_average)

    def collect_params(self, model: nn.Module) -> NamedParams:
        """Meta-network parameters only; the original network is frozen."""
        norms = {
            f'{name}.{p}'
            for name, m in model.named_modules()
            if isinstance(m, nn.modules.batchnorm._NormBase)
            for p in ('weight', 'bias')
        }
        return [(n, p) for n, p in model.named_parameters()
                if is_meta_name(n) and (self.adapt == 'all' or n in norms)]

    def forward(self, inputs: Tensor) -> Tuple[Tensor, Dict[str, Any]]:
        """Logits and, of the same pass, each partition's two outputs."""
        with self.model.backbone.recording_partitions(
                self.per_partition_regulariser) as partitions:
            logits = self.decode(inputs)
        return logits, dict(partitions=partitions)

    def loss(self, logits: Tensor, inputs: Tensor,
             partitions: PartitionPairs) -> Tensor:
        """Confident-pixel entropy plus the self-distilled regulariser.

        Args:
            logits (Tensor): Decoder logits, shape (N, C, h, w).
            inputs (Tensor): The batch (unused).
            partitions (PartitionPairs): ``(adapted, frozen)`` output per
                partition, of the forward that gave ``logits``.
        """
        entropy = ENTROPY_AVERAGES[self.entropy_average]
        return (entropy(logits, self.threshold) +
                self.reg_weight * self_distillation_loss(partitions))
