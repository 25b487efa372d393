"""EncoderDecoder whose original network is frozen around meta networks."""
from typing import Optional

import torch.nn as nn
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS

from ..norm import check_norm_mode, convert_batchnorms

META_PREFIX = 'meta_nets.'


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

    Pair it with a meta backbone (:class:`MetaResNetV1c` etc.): only the
    meta networks train (warm-up on source data, then test-time
    adaptation). Keys are those of ``EncoderDecoder``, so stock mmseg
    checkpoints load.

    Args:
        frozen_norm_mode (str): How the frozen network's BN layers
            (backbone and heads) normalise; see
            :mod:`mmseg_ecotta.models.norm`. Defaults to ``'source'``.
        **kwargs: Passed to :class:`EncoderDecoder`.
    """

    def __init__(self,
                 frozen_norm_mode: str = 'source',
                 init_cfg: Optional[dict] = None,
                 **kwargs) -> None:
        super().__init__(init_cfg=init_cfg, **kwargs)
        if not hasattr(self.backbone, 'meta_nets'):
            raise TypeError(
                f'MetaEncoderDecoder needs a meta backbone, got '
                f'{type(self.backbone).__name__}: set model.backbone.type to '
                "'MetaResNetV1c' (or MetaResNet/MetaResNetV1d)")
        self.frozen_norm_mode = check_norm_mode(frozen_norm_mode)
        freeze_original_network(self, frozen_norm_mode)
