"""Batch normalisation whose statistics source is a switch, not a mode.

Test-time adaptation needs to choose *how* a BN layer normalises (with the
stored source statistics or with the current batch's) independently of
``model.train()``/``model.eval()``, and must never move the stored running
statistics. :class:`TTABatchNorm2d` does exactly that; existing BN layers
are converted in place by swapping their class, so parameter names,
buffers and checkpoint keys stay those of the stock layer.

The ``norm_mode`` values (docs/advanced_guides/how_it_works.md, "EcoTTA's
BN layers", compares the first three as EcoTTA's options (a), (b) and (c)
at test time):

- ``'source'``: stored running statistics, i.e. an affine map
  ``x * scale + shift``. Autograd saves only the per-channel ``scale``, no
  activation, and the gradient is exact.
- ``'batch'``: statistics of the current batch with the exact gradient
  (the gradient flows through the mean and variance). Autograd keeps the
  normalised input, one activation-sized tensor per layer (TENT's cost).
- ``'batch_const'``: statistics of the current batch, treated as constants
  in the backward pass, so the layer is again an affine map that saves no
  activation; the gradient ignores the statistics' dependence on the input.
- ``'sample'``: statistics of each sample on its own (instance
  normalisation with the layer's affine parameters), exact gradient. At
  batch size 1 it is ``'batch'``; at batch size N it normalises every
  image exactly as ``'batch'`` would at batch size 1, so EcoTTA's warm-up
  (batches of 8) sees the normalisation the test stream (batches of 1)
  will use.

In the batch and sample modes a layer that sees one value per channel (the
DeepLabV3/V3+ image-pool branch at batch size 1, a 1x1 map) cannot
estimate a variance; it falls back to the stored statistics instead of
raising "Expected more than 1 value per channel". (``'sample'`` does so for
every 1x1 map, as ``'batch'`` does at batch size 1.)

LayerNorm and GroupNorm (SegFormer's MiT encoder normalises with LayerNorm)
store no statistics: they normalise each token or sample by its own, in
train and eval mode alike, so no ``norm_mode`` applies to them and they are
never converted. Their scale and shift are adapted like BN's
(:func:`norm_affine_params`).
"""
from typing import Callable, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.modules.batchnorm import _BatchNorm

NORM_MODES = ('source', 'batch', 'batch_const', 'sample')


def check_norm_mode(norm_mode: str) -> str:
    """Return ``norm_mode`` or raise a ``ValueError`` listing valid ones."""
    if norm_mode not in NORM_MODES:
        raise ValueError(f'unknown norm_mode {norm_mode!r}; choose one of '
                         f'{NORM_MODES}')
    return norm_mode


class TTABatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d that normalises by ``norm_mode`` and never updates stats.

    Created by :func:`convert_batchnorms`, never directly: the class of an
    existing BN layer is swapped so that its parameters and buffers (and
    their checkpoint keys) are untouched.
    """

    norm_mode: str = 'source'

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise ``x`` of shape (N, C, H, W) by ``self.norm_mode``."""
        # Values each statistic is estimated from, per channel.
        per_image = self.norm_mode == 'sample'
        values = x[0, 0].numel() if per_image else x.numel() // x.shape[1]
        if self.norm_mode == 'source' or values == 1:
            mean, var = self.running_mean, self.running_var
        elif self.norm_mode == 'sample':  # 'batch' on each image alone
            return F.instance_norm(
                x, weight=self.weight, bias=self.bias, eps=self.eps)
        elif self.norm_mode == 'batch':
            return F.batch_norm(x, None, None, self.weight, self.bias, True,
                                0.0, self.eps)
        else:  # 'batch_const': statistics as constants in the backward
            with torch.no_grad():
                var, mean = torch.var_mean(x, dim=(0, 2, 3), correction=0)
        # x * scale + shift: with frozen affine parameters the backward
        # needs only ``scale`` (C values), never the activation.
        inv_std = torch.rsqrt(var + self.eps)
        weight = self.weight if self.affine else torch.ones_like(mean)
        bias = self.bias if self.affine else torch.zeros_like(mean)
        scale = weight * inv_std
        shift = bias - mean * scale
        return x * scale[None, :, None, None] + shift[None, :, None, None]


def convert_batchnorms(
        module: nn.Module,
        norm_mode: str,
        skip: Optional[Callable[[str], bool]] = None) -> nn.Module:
    """Turn every BN layer of ``module`` into a :class:`TTABatchNorm2d`.

    Catches ``BatchNorm2d``, ``SyncBatchNorm`` and mmengine's
    ``_BatchNormXd`` (what SyncBN becomes on one device) alike.

    Args:
        module (nn.Module): Model to convert in place.
        norm_mode (str): One of :data:`NORM_MODES`.
        skip (Callable[[str], bool], optional): Predicate on the qualified
            module name; matching layers are left untouched. Defaults to
            None (convert all).

    Returns:
        nn.Module: ``module`` itself.
    """
    check_norm_mode(norm_mode)
    for name, m in module.named_modules():
        if not isinstance(m, _BatchNorm) or (skip and skip(name)):
            continue
        if not m.track_running_stats or m.running_mean is None:
            raise ValueError(
                f'BN layer {name!r} has no running statistics; TTA needs '
                'the source statistics, build it with '
                'track_running_stats=True')
        m.__class__ = TTABatchNorm2d
        m.norm_mode = norm_mode
    return module


def set_norm_mode(module: nn.Module, norm_mode: str) -> None:
    """Set ``norm_mode`` on every :class:`TTABatchNorm2d` in ``module``."""
    check_norm_mode(norm_mode)
    for m in module.modules():
        if isinstance(m, TTABatchNorm2d):
            m.norm_mode = norm_mode


# Layers that normalise each sample (GroupNorm) or each token (LayerNorm)
# by its own statistics: nothing is stored, so there are no statistics to
# swap for the test batch's (BN adapt cannot touch them), but their scale
# and shift adapt as BN's do (TENT's and CoTTA's SegFormer code train the
# MiT encoder's LayerNorms).
PER_SAMPLE_NORMS = (nn.LayerNorm, nn.GroupNorm)


def per_sample_norms(model: nn.Module) -> List[Tuple[str, nn.Module]]:
    """Named LayerNorm and GroupNorm layers of ``model``, in module order."""
    return [(name, m) for name, m in model.named_modules()
            if isinstance(m, PER_SAMPLE_NORMS)]


def norm_affine_params(
        model: nn.Module,
        batchnorm_only: bool = False) -> List[Tuple[str, nn.Parameter]]:
    """Named scale and shift of every normalisation layer in ``model``.

    Tent's choice of parameters to adapt (and CoTTA's ``trainable='norm'``),
    named as in ``model.named_parameters()`` and in module order: every
    :class:`TTABatchNorm2d` and, unless ``batchnorm_only``, every LayerNorm
    and GroupNorm (:data:`PER_SAMPLE_NORMS`). A model with BN layers only
    (ResNet DeepLab) gets exactly its BN parameters, in the same order as
    before LayerNorm and GroupNorm were collected. Layers built without
    affine parameters contribute nothing.

    Args:
        model (nn.Module): Model whose BN layers were converted
            (:func:`convert_batchnorms`).
        batchnorm_only (bool): Collect the BN layers' parameters only
            (CoTTA's ``trainable='bn'``). Defaults to False.
    """
    kinds = (TTABatchNorm2d, ) if batchnorm_only else (TTABatchNorm2d,
                                                       *PER_SAMPLE_NORMS)
    return [(f'{name}.{pname}', p) for name, m in model.named_modules()
            if isinstance(m, kinds)
            for pname, p in m.named_parameters(recurse=False)]
