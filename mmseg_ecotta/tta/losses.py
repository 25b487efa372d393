"""Adaptation losses: pure functions over logits and features.

Shapes: logits are (N, C, H, W) class scores; entropy maps are (N, H, W).
"""
import math
from typing import Sequence, Tuple

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ..models.lean_backward import pack_bits, unpack_bits


def check_logits(logits: Tensor, name: str = 'logits') -> None:
    """Raise unless ``logits`` is a non-empty float (N, C, H, W) tensor.

    Every loss calls it: a wrong shape would otherwise reduce over the
    wrong dimension (a (C, H, W) map has its classes in dim 0) and give a
    finite, silently wrong loss.

    Raises:
        TypeError: Not a floating-point tensor.
        ValueError: Not 4-D, or with a zero-sized dimension.
    """
    if not isinstance(logits, Tensor) or not logits.is_floating_point():
        kind = logits.dtype if isinstance(logits, Tensor) else type(logits)
        raise TypeError(f'{name} must be a floating-point tensor, got '
                        f'{kind}: pass the decoder scores, not labels')
    if logits.ndim != 4 or logits.numel() == 0:
        raise ValueError(f'{name} must have shape (N, C, H, W) with no '
                         f'empty dimension, got {tuple(logits.shape)}; add '
                         'the batch dimension with logits[None] if missing')


def entropy_map(logits: Tensor) -> Tensor:
    """Shannon entropy of the softmax, per pixel.

    Args:
        logits (Tensor): Class scores, shape (N, C, H, W).

    Returns:
        Tensor: Entropy in nats, shape (N, H, W).
    """
    check_logits(logits)
    log_p = logits.log_softmax(dim=1)
    return -(log_p.exp() * log_p).sum(dim=1)


def entropy_threshold(num_classes: int, factor: float = 0.4) -> float:
    """``E0 = factor * ln(C)``, EATA's reliability threshold (Eq. 3)."""
    if num_classes < 2:
        raise ValueError(f'num_classes={num_classes}: need at least 2')
    return factor * math.log(num_classes)


def mean_entropy_loss(logits: Tensor) -> Tensor:
    """TENT's loss: entropy of the softmax averaged over all pixels.

    Args:
        logits (Tensor): Class scores, shape (N, C, H, W).

    Returns:
        Tensor: Scalar loss.
    """
    return entropy_map(logits).mean()


def hard_label_cross_entropy(logits: Tensor, labels: Tensor) -> Tensor:
    """Cross-entropy to hard labels, averaged over every pixel.

    Args:
        logits (Tensor): Class scores, shape (N, C, H, W).
        labels (Tensor): Class indices, shape (N, H, W), integer.

    Returns:
        Tensor: Scalar loss.
    """
    check_logits(logits)
    if labels.shape != logits.shape[:1] + logits.shape[2:] or \
            labels.is_floating_point():
        raise ValueError(
            f'labels must be integer class indices of shape (N, H, W) = '
            f'{tuple(logits.shape[:1] + logits.shape[2:])}, got '
            f'{labels.dtype} {tuple(labels.shape)}; resize the logits to '
            'the labels first')
    log_p = logits.log_softmax(dim=1)
    return -log_p.gather(1, labels[:, None].long()).mean()


def soft_label_cross_entropy(logits: Tensor, probs: Tensor) -> Tensor:
    """Cross-entropy to a probability map, ``-(q * log p).sum(1).mean()``.

    Args:
        logits (Tensor): Class scores, shape (N, C, H, W).
        probs (Tensor): Target probabilities ``q``, same shape.

    Returns:
        Tensor: Scalar loss.
    """
    check_logits(logits)
    if probs.shape != logits.shape:
        raise ValueError(f'probs {tuple(probs.shape)} must have the shape of '
                         f'logits {tuple(logits.shape)}')
    return -(probs * logits.log_softmax(dim=1)).sum(dim=1).mean()


def confident_entropy_loss(logits: Tensor, threshold: float) -> Tensor:
    """Mean entropy over the pixels whose entropy is below ``threshold``.

    Pixels at or above the threshold contribute exactly zero gradient. When
    no pixel qualifies the loss is a graph-connected zero, so a backward
    pass is still valid and changes nothing.

    Args:
        logits (Tensor): Class scores, shape (N, C, H, W).
        threshold (float): ``E0`` in nats.

    Returns:
        Tensor: Scalar loss.
    """
    entropy = entropy_map(logits)
    confident = entropy < threshold
    if not bool(confident.any()):
        return entropy.sum() * 0.0
    return entropy[confident].mean()


def self_distillation_loss(pairs: Sequence[Tuple[Tensor, Tensor]]) -> Tensor:
    """EcoTTA's self-distilled regulariser, summed over partitions.

    ``sum_k mean |x_k - f_k(x_{k-1})|`` where the frozen output
    ``f_k(x_{k-1})`` is a stop-gradient target (EcoTTA Eq. 4).

    Args:
        pairs (Sequence[tuple[Tensor, Tensor]]): Per partition, the
            meta-adapted output and the frozen output, both (N, C, H, W).

    Returns:
        Tensor: Scalar loss.
    """
    if not pairs:
        raise ValueError('no partition outputs were recorded: the backbone '
                         'must be a MetaResNet with '
                         'record_partition_outputs=True')
    for k, (adapted, frozen) in enumerate(pairs):
        # l1_loss would broadcast mismatched shapes (with only a warning).
        if (not isinstance(adapted, Tensor) or not isinstance(frozen, Tensor)
                or adapted.shape != frozen.shape):
            shapes = [
                tuple(getattr(t, 'shape', ())) for t in (adapted, frozen)
            ]
            raise ValueError(
                f'partition {k}: the adapted output {shapes[0]} and the '
                f'frozen output {shapes[1]} must be tensors of one shape; '
                'the meta network must keep its partition\'s output shape')
        if not torch.is_floating_point(adapted) or adapted.numel() == 0:
            raise ValueError(
                f'partition {k}: outputs must be non-empty float tensors, '
                f'got {adapted.dtype} of shape {tuple(adapted.shape)}')
    return sum(
        SignBitL1Function.apply(adapted, frozen.detach())
        for adapted, frozen in pairs)


class SignBitL1Function(torch.autograd.Function):
    """``mean |a - t|`` whose backward keeps 2 bits per element.

    ``F.l1_loss`` keeps the float difference ``a - t`` for its backward: a
    full activation per partition (about 176 MiB for R50 at 512x1024). The
    gradient only needs its sign, so we keep ``a > t`` and ``a < t`` as
    packed bits; the gradient is identical, ``sign(a - t) / n`` (0 at ties,
    as torch's).
    """

    @staticmethod
    def forward(ctx, adapted: Tensor, target: Tensor) -> Tensor:
        diff = adapted - target
        ctx.shape, ctx.numel = diff.shape, diff.numel()
        ctx.save_for_backward(pack_bits(diff > 0), pack_bits(diff < 0))
        return diff.abs().mean()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> Tuple[Tensor, None]:
        positive, negative = ctx.saved_tensors
        sign = (
            unpack_bits(positive, ctx.shape).to(grad.dtype) -
            unpack_bits(negative, ctx.shape).to(grad.dtype))
        return sign * (grad / ctx.numel), None
