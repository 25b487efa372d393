"""EncoderDecoder whose original network is frozen around meta networks."""
from typing import Optional

import torch.nn as nn
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS
from mmseg.utils import SampleList
from torch import Tensor

from ..norm import check_norm_mode, convert_batchnorms, set_norm_mode
from ..self_distillation import self_distillation_loss

META_PREFIX = 'meta_nets.'
HEADS = ('decode_head', 'auxiliary_head')


def is_meta_name(name: str) -> bool:
    """Whether a qualified parameter/module name lies in a meta network."""
    return META_PREFIX in name or name.endswith('meta_nets')


def freeze_original_network(model: nn.Module, norm_mode: str) -> None:
    """Freeze everything of ``model`` except its EcoTTA meta networks.

    Original parameters stop requiring grad; original BN layers become
    :class:`~mmseg_ecotta.models.norm.TTABatchNorm2d` in ``norm_mode``,
    so their stored statistics never change whatever ``train()``/``eval()``
    is called. Meta networks are untouched.

    Args:
        model (nn.Module): A segmentor with a meta backbone.
        norm_mode (str): How the frozen BN layers normalise: ``'source'``,
            ``'batch'`` or ``'batch_const'``.
    """
    for name, param in model.named_parameters():
        if not is_meta_name(name):
            param.requires_grad_(False)
    convert_batchnorms(model, norm_mode, skip=is_meta_name)


@MODELS.register_module()
class MetaEncoderDecoder(EncoderDecoder):
    """mmseg ``EncoderDecoder`` with a frozen original network.

    Pair it with a meta backbone (:class:`MetaResNetV1c` etc. or
    :class:`MetaMixVisionTransformer`): only the
    meta networks train (warm-up on source data, then test-time
    adaptation). Keys are those of ``EncoderDecoder``, so stock mmseg
    checkpoints load.

    The model is the one owner of how its BN layers normalise, frozen and
    meta alike, in warm-up, plain inference and test-time adaptation (the
    EcoTTA method reads both modes from here), so the config a user reads
    is what runs.

    Args:
        frozen_norm_mode (str): How the frozen network's BN layers
            normalise: ``'source'`` (stored statistics), ``'batch'`` or
            ``'batch_const'`` (the input batch's statistics) or
            ``'sample'`` (each image's own; see
            :mod:`mmseg_ecotta.models.norm`). Defaults to ``'source'``.
        head_norm_mode (str, optional): How the frozen BN layers of the
            decode and auxiliary heads normalise, one of the same modes.
            The meta networks sit in the encoder only; ``'source'`` keeps
            the heads on their stored statistics while the encoder adapts
            (docs/benchmarks/dev_benchmark.md, "Other variants", says
            what that does).
            Defaults to None: as ``frozen_norm_mode``.
        meta_norm_mode (str, optional): How the meta networks' BN layers
            normalise, one of the same modes. Defaults to None: plain
            ``nn.BatchNorm2d`` (batch statistics that update the running
            ones in ``train()``, running statistics in ``eval()``).
        self_distill_weight (float): Weight of EcoTTA's self-distilled
            regulariser in the training (warm-up) loss, added as
            ``loss_self_distill``: the paper warms the meta networks up
            with cross-entropy plus this term, which keeps each
            partition's adapted output near the frozen one. Defaults to 0
            (cross-entropy only).
        **kwargs: Passed to :class:`EncoderDecoder`.
    """

    def __init__(self,
                 frozen_norm_mode: str = 'source',
                 head_norm_mode: Optional[str] = None,
                 self_distill_weight: float = 0.0,
                 meta_norm_mode: Optional[str] = None,
                 init_cfg: Optional[dict] = None,
                 **kwargs) -> None:
        super().__init__(init_cfg=init_cfg, **kwargs)
        if not hasattr(self.backbone, 'meta_nets'):
            raise TypeError(
                f'MetaEncoderDecoder needs a meta backbone, got '
                f'{type(self.backbone).__name__}: set model.backbone.type to '
                "'MetaResNetV1c' (or MetaResNet/MetaResNetV1d) for a ResNet, "
                "'MetaMixVisionTransformer' for SegFormer's MiT")
        if self_distill_weight < 0:
            raise ValueError(f'self_distill_weight={self_distill_weight} '
                             'must be >= 0 (0 turns the term off)')
        self.frozen_norm_mode = check_norm_mode(frozen_norm_mode)
        self.self_distill_weight = self_distill_weight
        freeze_original_network(self, frozen_norm_mode)
        # The effective mode, so that readers never resolve the default.
        self.head_norm_mode = check_norm_mode(head_norm_mode
                                              or frozen_norm_mode)
        for head in HEADS:
            if hasattr(self, head):
                set_norm_mode(getattr(self, head), self.head_norm_mode)
        self.meta_norm_mode = meta_norm_mode
        if meta_norm_mode is not None:
            convert_batchnorms(self.backbone.meta_nets,
                               check_norm_mode(meta_norm_mode))

    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """mmseg's training losses plus the weighted self-distillation.

        The frozen partition outputs come out of the same forward.
        """
        if not self.self_distill_weight:
            return super().loss(inputs, data_samples)
        with self.backbone.recording_partitions() as pairs:
            losses = super().loss(inputs, data_samples)
        losses['loss_self_distill'] = (
            self.self_distill_weight * self_distillation_loss(pairs))
        return losses
