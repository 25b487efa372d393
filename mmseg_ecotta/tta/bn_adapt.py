"""BN adapt: normalise with test-batch statistics, no gradients.

Schneider et al., Improving robustness against common corruptions by
covariate shift adaptation, NeurIPS 2020 (https://arxiv.org/abs/2006.16971)
"""
from collections import Counter
from typing import List

import torch.nn as nn
from mmengine.logging import MMLogger
from torch.nn.modules.batchnorm import _BatchNorm

from ..models.norm import convert_batchnorms, per_sample_norms
from ..registry import TTA_METHODS
from .base import TTAMethod, model_name


def _where(names: List[str]) -> str:
    """The top-level parts of the model the named layers are in."""
    return ', '.join(sorted({n.split('.')[0] for n in names}))


@TTA_METHODS.register_module()
class BNAdapt(TTAMethod):
    """Replace the source BN statistics by each test batch's statistics.

    Only BN layers store statistics to replace. LayerNorm and GroupNorm
    (SegFormer's MiT encoder normalises with LayerNorm; its BN layers are
    the head's) normalise each token or sample by its own statistics
    already, so they stay as trained: a model with such layers gets one
    log line saying which layers adapt and which cannot, and a model with
    no BN layer at all is an error.
    """

    def configure_norms(self, model: nn.Module) -> None:
        """Every BN layer uses batch statistics; stored ones never move."""
        bns = [
            n for n, m in model.named_modules() if isinstance(m, _BatchNorm)
        ]
        others = per_sample_norms(model)
        if not bns:
            raise ValueError(
                f'BNAdapt replaces the stored statistics of BN layers, but '
                f'{model_name(model)} has no BN layer (LayerNorm and '
                'GroupNorm store none): there is nothing to adapt. Run '
                "Source, or Tent, which adapts the scale and shift of every "
                'norm layer')
        if others:
            kinds = Counter(type(m).__name__ for _, m in others)
            counts = ', '.join(f'{n} {kind}' for kind, n in kinds.items())
            MMLogger.get_current_instance().warning(
                f'BNAdapt on {model_name(model)}: its {len(bns)} BN layers '
                f'(in {_where(bns)}) normalise with test-batch statistics; '
                f'its {counts} layers (in {_where([n for n, _ in others])}) '
                'normalise each token or sample by its own statistics, store '
                'none to replace, and stay as trained')
        convert_batchnorms(model, 'batch')
