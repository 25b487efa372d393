"""Lean backward passes through the frozen part of a network.

EcoTTA (Song et al., "EcoTTA: Memory-Efficient Continual Test-time
Adaptation via Self-distilled Regularization", CVPR 2023,
https://arxiv.org/abs/2303.01904) freezes the original network and trains
only small meta networks, yet the gradient of the loss must still travel
back through the frozen layers to reach the shallow meta networks. Stock
PyTorch autograd then keeps almost as many activations as full
fine-tuning, because every op saves what *any* of its gradients could need:

* ``F.conv2d`` saves its input (for the weight gradient) even when the
  weight is frozen;
* ``relu`` saves its float output (4 bytes per element) to build a mask;
* ``max_pool2d`` saves its input and int64 indices (8 bytes per output).

The autograd Functions below keep only what the *input* gradient needs:

* frozen conv: nothing but the weight, which lives in memory anyway;
* ReLU: a sign mask packed to 1 bit per element;
* max-pool: the argmax position inside its kernel window, 1 byte per
  output element.

Bilinear resize, concatenation, residual additions and frozen BN written as
the affine map ``x * scale + shift`` (scale/shift computed under no_grad)
already save no activation in stock autograd, so nothing is needed there;
nor for a frozen ``nn.Linear``: stock ``F.linear`` keeps only the weight
when the weight needs no gradient.

Transformer encoders (SegFormer's MiT) add two cases:

* mmcv's ``Conv2d`` wrapper (MixFFN's convolutions) is the frozen conv
  above;
* mmseg's ``EfficientMultiheadAttention`` asks ``nn.MultiheadAttention``
  for its attention weights only to discard them, and that explicit path
  keeps the softmax matrix, ``heads x N x N'`` floats per block (N
  queries, N' reduced keys), quadratic in the image size. Asking for none
  runs fused ``scaled_dot_product_attention`` instead, which keeps
  queries, keys, values, output and one log-sum-exp per query: the same
  function and gradients (up to float rounding), as mmseg's path for
  mmcv < 1.3.17 does.

What a transformer block keeps for its *input* gradient cannot go without
recomputation: LayerNorm and GELU inputs and the attention's operands
(docs/advanced_guides/how_it_works.md, "EcoTTA on a transformer encoder").

:func:`make_lean` converts the modules of a network in place by swapping
each instance's class to a subclass that only overrides ``forward``, so
parameters, buffers, hooks and state_dict keys stay exactly as they were;
:func:`undo_lean` swaps the classes back.

Every tensor kept for backward goes through ``ctx.save_for_backward`` (never
a plain ``ctx`` attribute), so ``torch.autograd.graph.saved_tensors_hooks``
(and :mod:`mmseg_ecotta.models.memory_probe`) see exactly what is kept.
"""
from typing import Any, Dict, Optional, Tuple, Type, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn.bricks.wrappers import Conv2d as MMCVConv2d
from mmseg.models.backbones.mit import EfficientMultiheadAttention
from mmseg.models.utils import nchw_to_nlc, nlc_to_nchw
from torch import Tensor
from torch.autograd.function import FunctionCtx, once_differentiable

__all__ = [
    'FrozenConv2dFunction', 'PackedReLUFunction', 'CompactMaxPool2dFunction',
    'LeanConv2d', 'LeanMMCVConv2d', 'LeanReLU', 'LeanMaxPool2d',
    'LeanEfficientMultiheadAttention', 'frozen_conv2d', 'packed_relu',
    'compact_max_pool2d', 'pack_bits', 'unpack_bits', 'make_lean', 'undo_lean'
]

_Pair = Tuple[int, int]

# Bit weights of one packed byte: element ``8 * i + j`` of a mask lands in
# bit ``j`` of byte ``i``.
_BIT_VALUES = (1, 2, 4, 8, 16, 32, 64, 128)

# The argmax position inside a max-pool window is stored as uint8, so
# windows of up to 256 positions (16x16) are supported; larger windows fall
# back to stock autograd.
_MAX_WINDOW = 256


def _bit_values(device: torch.device) -> Tensor:
    return torch.tensor(_BIT_VALUES, dtype=torch.uint8, device=device)


def pack_bits(mask: Tensor) -> Tensor:
    """Pack a boolean mask into 1 bit per element.

    Vectorised: the flattened mask is padded to a multiple of 8, viewed as
    ``(M, 8)`` bytes and reduced with the bit weights ``1, 2, ..., 128``.
    The uint8 temporaries are freed on return; only the packed result is
    meant to be kept.

    Args:
        mask (Tensor): Boolean tensor of any shape with ``numel() == n``.

    Returns:
        Tensor: Contiguous uint8 tensor of shape ``(ceil(n / 8),)``.
    """
    flat = mask.reshape(-1)
    pad = (-flat.numel()) % 8
    if pad:
        flat = torch.cat([flat, flat.new_zeros(pad)])
    # bool -> uint8 is a reinterpretation (both 1 byte, values 0/1).
    bits = flat.view(torch.uint8).view(-1, 8)
    return (bits * _bit_values(mask.device)).sum(dim=1, dtype=torch.uint8)


def unpack_bits(packed: Tensor, shape: torch.Size) -> Tensor:
    """Invert :func:`pack_bits`.

    Args:
        packed (Tensor): uint8 tensor of shape ``(ceil(n / 8),)``.
        shape (torch.Size): Shape of the original mask, ``n`` elements.

    Returns:
        Tensor: Boolean tensor of shape ``shape``.
    """
    bits = packed.unsqueeze(1).bitwise_and(_bit_values(packed.device)) != 0
    return bits.reshape(-1)[:shape.numel()].reshape(shape)


class FrozenConv2dFunction(torch.autograd.Function):
    """Conv2d whose weight (and bias) get no gradient: saves only the weight.

    Stock ``F.conv2d`` saves its input so it could compute the weight
    gradient; with a frozen weight that input (an activation-sized tensor)
    is dead weight. The input gradient ``conv_transpose(grad_out, weight)``
    needs only the weight, which the module holds anyway, so saving it
    costs no extra memory. A trainable bias needs only ``grad_out``, so it
    is still supported. Only ``padding_mode='zeros'`` is handled here.
    """

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor, weight: Tensor,
                bias: Optional[Tensor], stride: _Pair, padding: _Pair,
                dilation: _Pair, groups: int) -> Tensor:
        """Apply the convolution.

        Args:
            x (Tensor): Input of shape ``(N, C_in, H, W)``.
            weight (Tensor): Frozen weight ``(C_out, C_in / groups, kh, kw)``.
            bias (Tensor, optional): Bias of shape ``(C_out,)``.
            stride, padding, dilation (tuple[int, int]): As ``F.conv2d``.
            groups (int): As ``F.conv2d``.

        Returns:
            Tensor: Output of shape ``(N, C_out, H_out, W_out)``.
        """
        out = F.conv2d(x, weight, bias, stride, padding, dilation, groups)
        # Only the weight: the input is never needed (weight is frozen).
        ctx.save_for_backward(weight)
        ctx.conv_args = (stride, padding, dilation, groups)
        ctx.input_shape = x.shape
        ctx.input_dtype = x.dtype
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: Tensor) -> Tuple[Optional[Tensor], ...]:
        """Return the input (and bias) gradient; ``None`` for the weight."""
        weight, = ctx.saved_tensors
        stride, padding, dilation, groups = ctx.conv_args
        grad_x = grad_bias = None
        if ctx.needs_input_grad[0]:
            # Under autocast grad_out may be half while the weight is float.
            grad_x = torch.nn.grad.conv2d_input(ctx.input_shape,
                                                weight.to(grad_out.dtype),
                                                grad_out, stride, padding,
                                                dilation,
                                                groups).to(ctx.input_dtype)
        if ctx.needs_input_grad[2]:
            grad_bias = grad_out.sum(dim=(0, 2, 3))
        return grad_x, None, grad_bias, None, None, None, None


class PackedReLUFunction(torch.autograd.Function):
    """ReLU that keeps a 1-bit sign mask instead of its float output.

    Stock ``relu`` saves its output (4 bytes per element in float32) only to
    test ``output > 0`` in backward. A bit per element carries the same
    information at 1/32 of the bytes; packing and unpacking cost one
    vectorised pass each.
    """

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor) -> Tensor:
        """Apply ReLU out of place.

        Args:
            x (Tensor): Input of any shape, e.g. ``(N, C, H, W)``.

        Returns:
            Tensor: ``max(x, 0)``, same shape as ``x``.
        """
        # Out of place on purpose: writing into ``x`` would bump its version
        # counter and break ops that saved ``x`` (e.g. a trainable conv).
        out = F.relu(x)
        # ``x > 0`` is stock relu's backward mask (``output > 0``), NaN and
        # zero included; it is a transient 1-byte-per-element tensor.
        ctx.save_for_backward(pack_bits(x > 0))
        ctx.shape = x.shape
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: Tensor) -> Tensor:
        """Pass the gradient where the input was positive."""
        packed, = ctx.saved_tensors
        return grad_out * unpack_bits(packed, ctx.shape)


class CompactMaxPool2dFunction(torch.autograd.Function):
    """Max-pool that keeps the argmax position inside each window (uint8).

    Stock ``max_pool2d`` saves its whole input plus int64 flat indices
    (8 bytes per output element). The backward only scatters ``grad_out``
    to the argmax positions, so we keep just the position inside the kernel
    window, ``kh_idx * kw + kw_idx`` in one byte, and rebuild the flat
    index in backward from the output coordinates.
    """

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor, kernel_size: _Pair, stride: _Pair,
                padding: _Pair, dilation: _Pair, ceil_mode: bool) -> Tensor:
        """Apply the max-pool.

        Args:
            x (Tensor): Input of shape ``(N, C, H, W)``.
            kernel_size, stride, padding, dilation (tuple[int, int]): As
                ``F.max_pool2d``.
            ceil_mode (bool): As ``F.max_pool2d``.

        Returns:
            Tensor: Output of shape ``(N, C, H_out, W_out)``.
        """
        out, index = F.max_pool2d(
            x,
            kernel_size,
            stride,
            padding,
            dilation,
            ceil_mode,
            return_indices=True)
        row, col = _window_origin(out.shape[-2:], stride, padding, x.device)
        width = x.shape[-1]
        # Position of the argmax relative to its window's top-left corner.
        d_row = (index.div(width, rounding_mode='floor') - row) // dilation[0]
        d_col = (index.remainder(width) - col) // dilation[1]
        local = (d_row * kernel_size[1] + d_col).to(torch.uint8)
        ctx.save_for_backward(local)
        ctx.pool_args = (kernel_size, stride, padding, dilation)
        ctx.input_shape = x.shape
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: Tensor) -> Tuple[Optional[Tensor], ...]:
        """Scatter-add ``grad_out`` onto the argmax positions."""
        local, = ctx.saved_tensors
        kernel_size, stride, padding, dilation = ctx.pool_args
        n, c, height, width = ctx.input_shape
        row, col = _window_origin(grad_out.shape[-2:], stride, padding,
                                  grad_out.device)
        local = local.long()
        row = row + local.div(
            kernel_size[1], rounding_mode='floor') * (
                dilation[0])
        col = col + local.remainder(kernel_size[1]) * dilation[1]
        index = (row * width + col).flatten(2)
        # Add, not assign: overlapping windows may share an argmax.
        grad_x = grad_out.new_zeros(n, c, height * width)
        grad_x.scatter_add_(2, index, grad_out.flatten(2))
        return (grad_x.view(n, c, height, width), None, None, None, None, None)


def _window_origin(out_size: torch.Size, stride: _Pair, padding: _Pair,
                   device: torch.device) -> Tuple[Tensor, Tensor]:
    """Input coordinates of each pooling window's top-left corner.

    Returns:
        tuple[Tensor, Tensor]: int64 rows ``(H_out, 1)`` and columns
        ``(1, W_out)``, broadcastable to ``(N, C, H_out, W_out)``.
    """
    rows = torch.arange(out_size[0], device=device) * stride[0] - padding[0]
    cols = torch.arange(out_size[1], device=device) * stride[1] - padding[1]
    return rows.view(-1, 1), cols.view(1, -1)


def _pair(value: Union[int, Tuple[int, ...]]) -> _Pair:
    if isinstance(value, int):
        return value, value
    return int(value[0]), int(value[1])


def _needs_graph(*tensors: Optional[Tensor]) -> bool:
    """Whether autograd will record an op on ``tensors``."""
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad
                                           for t in tensors)


def frozen_conv2d(x: Tensor,
                  weight: Tensor,
                  bias: Optional[Tensor] = None,
                  stride: Union[int, _Pair] = 1,
                  padding: Union[int, _Pair] = 0,
                  dilation: Union[int, _Pair] = 1,
                  groups: int = 1) -> Tensor:
    """``F.conv2d`` that saves only the weight when the weight is frozen.

    Falls back to stock ``F.conv2d`` when the weight requires grad (its
    gradient needs the input, so the input must be kept) or when no graph
    is recorded.

    Args:
        x (Tensor): Input of shape ``(N, C_in, H, W)``.
        weight (Tensor): Weight ``(C_out, C_in / groups, kh, kw)``.
        bias (Tensor, optional): Bias ``(C_out,)``. Default: None.
        stride, padding, dilation (int | tuple[int, int]): As
            ``F.conv2d`` (numeric padding only). Defaults: 1, 0, 1.
        groups (int): As ``F.conv2d``. Default: 1.

    Returns:
        Tensor: Output of shape ``(N, C_out, H_out, W_out)``.
    """
    if weight.requires_grad or not _needs_graph(x, bias):
        return F.conv2d(x, weight, bias, stride, padding, dilation, groups)
    return FrozenConv2dFunction.apply(x, weight, bias, _pair(stride),
                                      _pair(padding), _pair(dilation), groups)


def packed_relu(x: Tensor, inplace: bool = False) -> Tensor:
    """ReLU that saves a 1-bit mask for backward.

    Args:
        x (Tensor): Input of any shape.
        inplace (bool): Honoured only when no graph is recorded (inference),
            where it saves memory at no risk. Default: False.

    Returns:
        Tensor: ``max(x, 0)``, same shape as ``x``.
    """
    if not _needs_graph(x):
        return F.relu(x, inplace=inplace)
    return PackedReLUFunction.apply(x)


def compact_max_pool2d(x: Tensor,
                       kernel_size: Union[int, _Pair],
                       stride: Optional[Union[int, _Pair]] = None,
                       padding: Union[int, _Pair] = 0,
                       dilation: Union[int, _Pair] = 1,
                       ceil_mode: bool = False) -> Tensor:
    """``F.max_pool2d`` that saves one byte per output element.

    Falls back to stock ``F.max_pool2d`` when no graph is recorded, for
    non-4D inputs, or for windows larger than 256 positions.

    Args:
        x (Tensor): Input of shape ``(N, C, H, W)``.
        kernel_size, stride, padding, dilation (int | tuple[int, int]): As
            ``F.max_pool2d``; ``stride`` defaults to ``kernel_size``.
        ceil_mode (bool): As ``F.max_pool2d``. Default: False.

    Returns:
        Tensor: Output of shape ``(N, C, H_out, W_out)``.
    """
    kernel = _pair(kernel_size)
    # ``F.max_pool2d`` spells "stride = kernel" as None or an empty list.
    stride = kernel if stride in (None, (), []) else _pair(stride)
    if (not _needs_graph(x) or x.dim() != 4
            or kernel[0] * kernel[1] > _MAX_WINDOW):
        return F.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode)
    return CompactMaxPool2dFunction.apply(x, kernel, stride, _pair(padding),
                                          _pair(dilation), ceil_mode)


def _numeric_padding(conv: nn.Conv2d) -> Optional[_Pair]:
    """``conv``'s padding as a pair of ints, or None if it has none.

    ``'valid'`` is zero padding; ``'same'`` is symmetric (hence expressible
    as a pair) only when every ``dilation * (k - 1)`` is even.
    """
    if not isinstance(conv.padding, str):
        return _pair(conv.padding)
    if conv.padding == 'valid':
        return 0, 0
    total = [d * (k - 1) for d, k in zip(conv.dilation, conv.kernel_size)]
    if any(t % 2 for t in total):
        return None
    return total[0] // 2, total[1] // 2


class LeanConv2d(nn.Conv2d):
    """``nn.Conv2d`` whose backward keeps no activation while it is frozen.

    Trainability is checked on every call, so a layer converted by
    :func:`make_lean` and later unfrozen gets its weight gradient from the
    stock path. Padding modes other than ``'zeros'`` and asymmetric
    ``'same'`` padding use the stock path too.
    """

    def forward(self, x: Tensor) -> Tensor:
        """Convolve ``x`` of shape ``(N, C_in, H, W)``."""
        padding = _numeric_padding(self)
        if (self.padding_mode != 'zeros' or padding is None
                or self.weight.requires_grad):
            return super().forward(x)
        return frozen_conv2d(x, self.weight, self.bias, self.stride, padding,
                             self.dilation, self.groups)


class LeanMMCVConv2d(MMCVConv2d, LeanConv2d):
    """mmcv's ``Conv2d`` wrapper with :class:`LeanConv2d`'s backward.

    mmcv's ``forward`` runs first (its empty-input path, for old torch
    only) and hands on to :class:`LeanConv2d`.
    """


class LeanEfficientMultiheadAttention(EfficientMultiheadAttention):
    """SegFormer's attention without the attention matrix kept for backward.

    mmseg's ``forward`` discards the averaged attention weights it asks
    ``nn.MultiheadAttention`` for; computing them keeps the softmax output
    (``heads x N x N'``) for backward. Asking for none runs fused
    ``scaled_dot_product_attention``: same output and gradients, for
    frozen and trainable projections alike, up to float rounding. The rest
    is mmseg's ``forward`` (mmseg's ``legacy_forward`` asks for none too,
    but predates the batch-first transposes).
    """

    def forward(self,
                x: Tensor,
                hw_shape: Tuple[int, int],
                identity: Optional[Tensor] = None) -> Tensor:
        """Attend over tokens ``x`` of shape ``(N, H * W, C)``."""
        x_kv = x
        if self.sr_ratio > 1:
            x_kv = nchw_to_nlc(self.sr(nlc_to_nchw(x, hw_shape)))
            x_kv = self.norm(x_kv)
        if identity is None:
            identity = x
        x_q = x
        if self.batch_first:  # nn.MultiheadAttention: (L, N, C)
            x_q, x_kv = x_q.transpose(0, 1), x_kv.transpose(0, 1)
        out = self.attn(query=x_q, key=x_kv, value=x_kv, need_weights=False)[0]
        if self.batch_first:
            out = out.transpose(0, 1)
        return identity + self.dropout_layer(self.proj_drop(out))


class LeanReLU(nn.ReLU):
    """``nn.ReLU`` that saves a 1-bit sign mask for backward.

    While a graph is recorded it runs out of place even if ``inplace=True``
    (callers use the return value; see :class:`PackedReLUFunction`).
    """

    def forward(self, x: Tensor) -> Tensor:
        """Apply ReLU to ``x`` of any shape."""
        return packed_relu(x, inplace=self.inplace)


class LeanMaxPool2d(nn.MaxPool2d):
    """``nn.MaxPool2d`` that saves one byte per output element for backward.

    ``return_indices=True`` uses the stock path (the caller wants the int64
    indices anyway).
    """

    def forward(self, x: Tensor) -> Tensor:
        """Pool ``x`` of shape ``(N, C, H, W)``."""
        if self.return_indices:
            return super().forward(x)
        return compact_max_pool2d(x, self.kernel_size, self.stride,
                                  self.padding, self.dilation, self.ceil_mode)


# Exact stock class -> lean subclass. Exact types only: a subclass of
# nn.Conv2d (e.g. an adaptive-padding conv) may override ``forward`` and
# would lose its behaviour if its class were swapped.
_LEAN_CLASSES: Dict[Type[nn.Module], Type[nn.Module]] = {
    nn.Conv2d: LeanConv2d,
    MMCVConv2d: LeanMMCVConv2d,
    nn.ReLU: LeanReLU,
    nn.MaxPool2d: LeanMaxPool2d,
    EfficientMultiheadAttention: LeanEfficientMultiheadAttention,
}
_STOCK_CLASSES = {lean: stock for stock, lean in _LEAN_CLASSES.items()}


def make_lean(module: nn.Module) -> nn.Module:
    """Convert conv, ReLU, max-pool and attention layers, in place.

    Every ``nn.Conv2d`` (and mmcv's wrapper), ``nn.ReLU``, ``nn.MaxPool2d``
    and mmseg ``EfficientMultiheadAttention`` inside ``module`` (itself
    included) has its class swapped to its lean subclass
    (:data:`_LEAN_CLASSES`). Only ``forward`` changes:
    parameters, buffers, hooks, sharing and state_dict keys are untouched.
    Convs are converted whatever their ``requires_grad``: a
    :class:`LeanConv2d` uses the stock path whenever its weight requires
    grad, so no gradient is ever dropped. BatchNorm layers are not touched.

    Args:
        module (nn.Module): Network to convert.

    Returns:
        nn.Module: ``module`` itself.
    """
    for m in module.modules():
        lean = _LEAN_CLASSES.get(type(m))
        if lean is not None:
            m.__class__ = lean
    return module


def undo_lean(module: nn.Module) -> nn.Module:
    """Reverse :func:`make_lean` in place.

    Args:
        module (nn.Module): Network converted by :func:`make_lean`.

    Returns:
        nn.Module: ``module`` itself, with the stock classes restored.
    """
    for m in module.modules():
        stock = _STOCK_CLASSES.get(type(m))
        if stock is not None:
            m.__class__ = stock
    return module
