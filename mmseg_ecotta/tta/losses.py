"""Adaptation losses: pure functions over logits and features.

Shapes: logits are (N, C, H, W) class scores; entropy maps are (N, H, W).
"""
import math

from torch import Tensor

# Shared with the warm-up loss, so it lives with the models.
from ..models.self_distillation import self_distillation_loss  # noqa: F401


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


def class_balanced_confident_entropy(logits: Tensor,
                                     threshold: float) -> Tensor:
    """Confident-pixel entropy with every predicted class weighted equally.

    :func:`confident_entropy_loss` averages over pixels, so the classes
    that cover most of a street scene (road, building, sky) dominate its
    gradient, and sharpening them pulls ambiguous pixels of the small
    classes towards them. Here the confident pixels are grouped by their
    predicted class; the loss is the mean over the classes present of each
    class's mean entropy.

    Args:
        logits (Tensor): Class scores, shape (N, C, H, W).
        threshold (float): ``E0`` in nats.

    Returns:
        Tensor: Scalar loss (a graph-connected zero when no pixel is
        confident).
    """
    entropy = entropy_map(logits)
    confident = entropy < threshold
    if not bool(confident.any()):
        return entropy.sum() * 0.0
    labels = logits.detach().argmax(dim=1)[confident]
    num_classes = logits.shape[1]
    counts = labels.bincount(minlength=num_classes).to(entropy.dtype)
    sums = entropy.new_zeros(num_classes).index_add(0, labels,
                                                    entropy[confident])
    present = counts > 0
    return (sums[present] / counts[present]).mean()
