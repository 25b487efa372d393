"""Adaptation losses: pure functions over logits and features.

Shapes: logits are (N, C, H, W) class scores; entropy maps are (N, H, W).
"""
import math
from typing import Sequence, Tuple

import torch.nn.functional as F
from torch import Tensor


def entropy_map(logits: Tensor) -> Tensor:
    """Shannon entropy of the softmax, per pixel.

    Args:
        logits (Tensor): Class scores, shape (N, C, H, W).

    Returns:
        Tensor: Entropy in nats, shape (N, H, W).
    """
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
    return sum(
        F.l1_loss(adapted, frozen.detach()) for adapted, frozen in pairs)
