"""TENT: test entropy minimisation of the norm layers' affine parameters.

Wang et al., Tent: Fully Test-time Adaptation by Entropy Minimization,
ICLR 2021 (https://arxiv.org/abs/2006.10726); code after DequanWang/tent.
The ``'cotta'`` recipe is the TENT of CoTTA's Cityscapes -> ACDC table
(Wang et al., CVPR 2022): ``single_gpu_tent`` of their segmentation
release.

Tent's code adapts BatchNorm; on SegFormer, whose MiT encoder normalises
with LayerNorm, TENT's and CoTTA's code adapt the LayerNorm scale and shift
too (CoTTA's ``single_gpu_tent`` trains every parameter named ``norm`` or
``bn``: the encoder's LayerNorms and the head's BN). Here every BN,
LayerNorm and GroupNorm layer's scale and shift adapt
(:func:`~mmseg_ecotta.models.norm.norm_affine_params`); on a model with BN
layers only (ResNet DeepLab) that is exactly its BN parameters.
"""
from typing import Any, Dict, Optional

import torch.nn as nn
from mmseg.models.utils import resize
from torch import Tensor

from ..models.norm import convert_batchnorms, norm_affine_params
from ..registry import TTA_METHODS
from .base import NamedParams, TTAMethod, model_name
from .losses import hard_label_cross_entropy, mean_entropy_loss

# recipe -> (BN norm_mode, loss, a fresh optimizer per domain).
TENT_RECIPES = {
    # tent's own code: train-mode BN (test-batch statistics), entropy of
    # the softmax, one optimizer for the whole stream.
    'tent': ('batch', 'entropy', False),
    # CoTTA's single_gpu_tent: model.eval() (stored statistics), the
    # cross-entropy of a second forward to the argmax of the first
    # (``gt_semantic_seg=torch.from_numpy(result[0])``), an Adam built
    # inside the function, which its driver calls once per domain.
    'cotta': ('source', 'own_argmax', True),
}


@TTA_METHODS.register_module()
class Tent(TTAMethod):
    """Self-training of the norm layers' scale and shift, two recipes.

    - ``'tent'`` (default, tent's code): BN layers normalise with the test
      batch's statistics and the loss is the softmax entropy averaged over
      every pixel.
    - ``'cotta'`` (the TENT row of CoTTA's Cityscapes -> ACDC table, their
      release's ``single_gpu_tent``): BN layers keep the stored source
      statistics (eval mode), the loss is the cross-entropy of the
      logits, upsampled to the input resolution, to their own argmax, and
      the optimizer starts afresh at every domain boundary. The release
      predicts in one forward and computes the loss in a second one with
      the same weights and statistics; here both come from the same pass.

    Both train the affine parameters of every BN, LayerNorm and GroupNorm
    layer (a model with none is an error). How BN layers normalise is the
    recipe's; LayerNorm and GroupNorm normalise each token or sample by its
    own statistics in either recipe. The image-pool BN of
    DeepLabV3/V3+ sees one value per channel at batch size 1; in the
    ``'tent'`` recipe it falls back to its stored statistics (its affine
    parameters still adapt) instead of crashing, see
    :mod:`mmseg_ecotta.models.norm`. The optimizer (CoTTA's Adam settings,
    as both rows of CoTTA's table) is in ``configs/_base_/tta/tent.py``.

    Args:
        model (nn.Module): The segmentor, source weights loaded.
        recipe (str): ``'tent'`` or ``'cotta'``, see above. Defaults to
            ``'tent'``.
        optimizer_per_domain (bool, optional): A fresh optimizer at every
            domain boundary (:meth:`TTAMethod.segment_started`). Defaults
            to None: the recipe's (False for ``'tent'``, True for
            ``'cotta'``).
        **kwargs: Passed to :class:`TTAMethod`.
    """

    def __init__(self,
                 model: nn.Module,
                 recipe: str = 'tent',
                 optimizer_per_domain: Optional[bool] = None,
                 **kwargs) -> None:
        if recipe not in TENT_RECIPES:
            raise ValueError(f'unknown TENT recipe {recipe!r}; choose one '
                             f'of {sorted(TENT_RECIPES)}')
        self.recipe = recipe
        self.norm_mode, self.loss_kind, per_domain = TENT_RECIPES[recipe]
        if optimizer_per_domain is None:
            optimizer_per_domain = per_domain
        super().__init__(
            model, optimizer_per_domain=optimizer_per_domain, **kwargs)

    def settings(self) -> Dict[str, Any]:
        """The recipe and whether the optimizer restarts per domain."""
        return dict(
            recipe=self.recipe, optimizer_per_domain=self.optimizer_per_domain)

    def configure_norms(self, model: nn.Module) -> None:
        """Test-batch statistics (tent's train mode) or stored ones."""
        convert_batchnorms(model, self.norm_mode)

    def collect_params(self, model: nn.Module) -> NamedParams:
        """Norm scale and shift only: tent's choice of a small, stable set.

        Raises:
            ValueError: The model has no norm layer with affine parameters.
        """
        params = norm_affine_params(model)
        if not params:
            name = type(self).__name__
            raise ValueError(
                f'{name} adapts the scale and shift of norm layers, but '
                f'{model_name(model)} has no BN, LayerNorm or GroupNorm '
                f'layer with affine parameters: {name} would adapt nothing. '
                'Build the norm layers with affine parameters (norm_cfg '
                "without affine=False), or run CoTTA (trainable='all')")
        return params

    def loss(self, logits: Tensor, inputs: Tensor) -> Tensor:
        """Mean softmax entropy, or cross-entropy to the own argmax.

        Args:
            logits (Tensor): Decoder logits, shape (N, C, h, w).
            inputs (Tensor): The batch, shape (N, 3, H, W); its size is
                the label resolution of the ``'cotta'`` recipe.
        """
        if self.loss_kind == 'entropy':
            return mean_entropy_loss(logits)
        logits = resize(
            logits,
            size=inputs.shape[2:],
            mode='bilinear',
            align_corners=self.model.align_corners)
        return hard_label_cross_entropy(logits, logits.detach().argmax(1))
