"""EcoTTA's self-distilled regulariser (Song et al., CVPR 2023, Eq. 4).

It lives with the models, not with the adaptation losses, because both
sides use it: :class:`MetaEncoderDecoder` adds it to the warm-up loss and
the EcoTTA method to the test-time loss. Shapes are (N, C, H, W).
"""
from typing import Sequence, Tuple

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from .lean_backward import pack_bits, unpack_bits


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
        raise ValueError('no partition outputs were recorded: run the '
                         'forward of a MetaResNet inside its '
                         'recording_partitions() block')
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
