"""Tests for lean backward passes through frozen layers.

Gradients must match stock autograd while the saved bytes shrink.
"""
import copy
import math
from typing import Callable, Dict, List

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn.bricks.wrappers import Conv2d as MMCVConv2d
from mmseg.models.backbones.mit import (EfficientMultiheadAttention,
                                        TransformerEncoderLayer)
from torch import Tensor

from mmseg_ecotta.models import lean_backward
from mmseg_ecotta.models.lean_backward import (LeanConv2d, LeanMaxPool2d,
                                               LeanReLU, compact_max_pool2d,
                                               frozen_conv2d, make_lean,
                                               pack_bits, packed_relu,
                                               undo_lean, unpack_bits)
from mmseg_ecotta.models.memory_probe import (SavedTensorRecorder,
                                              profile_saved_tensors,
                                              saved_tensor_bytes)
from ..conftest import DEVICES


def _freeze(module: nn.Module) -> None:
    for p in module.parameters():
        p.requires_grad_(False)


def _grads(model: nn.Module, loss_fn: Callable[[],
                                               Tensor]) -> Dict[str, Tensor]:
    """Gradients of every trainable parameter after one backward."""
    model.zero_grad(set_to_none=True)
    loss_fn().backward()
    return {
        name: p.grad.clone()
        for name, p in model.named_parameters() if p.requires_grad
    }


def _assert_same_grads(stock: Dict[str, Tensor], lean: Dict[str,
                                                            Tensor]) -> None:
    assert stock.keys() == lean.keys()
    for name in stock:
        assert lean[name] is not None, name
        torch.testing.assert_close(
            lean[name], stock[name], rtol=1e-5, atol=1e-8, msg=name)


class ToyNet(nn.Module):
    """Trainable conv -> frozen conv/BN/ReLU/max-pool stack -> trainable.

    Mimics EcoTTA: trainable meta layers at the input, beside a frozen
    block (``meta_bn(f(x)) + conv_block(x)``) and at the output, so every
    frozen layer sits on the gradient path.
    """

    def __init__(self, inplace: bool, bias: bool) -> None:
        super().__init__()
        self.meta_in = nn.Conv2d(3, 8, 3, padding=1)
        self.stem = nn.Sequential(
            nn.Conv2d(8, 16, 3, stride=2, padding=(1, 1), bias=bias),
            nn.BatchNorm2d(16), nn.ReLU(inplace),
            nn.MaxPool2d(3, stride=2, padding=1))
        self.block = nn.Sequential(
            nn.Conv2d(16, 16, 3, padding=2, dilation=2, bias=bias),
            nn.BatchNorm2d(16), nn.ReLU(inplace),
            nn.Conv2d(16, 16, (3, 5), padding=(1, 2), groups=16, bias=bias),
            nn.BatchNorm2d(16))
        self.relu = nn.ReLU(inplace)
        self.meta_block = nn.Sequential(
            nn.Conv2d(16, 16, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.meta_bn = nn.BatchNorm2d(16)
        self.tail = nn.Sequential(
            nn.Conv2d(
                16,
                32,
                3,
                stride=(2, 1),
                padding=(1, 2),
                dilation=(1, 2),
                groups=4,
                bias=bias), nn.ReLU(inplace), nn.MaxPool2d(2, ceil_mode=True),
            nn.Conv2d(32, 32, 1, bias=bias), nn.ReLU(inplace))
        self.meta_out = nn.Conv2d(32, 5, 1)
        _freeze(self)
        for meta in (self.meta_in, self.meta_block, self.meta_bn,
                     self.meta_out):
            for p in meta.parameters():
                p.requires_grad_(True)
        # Non-trivial BN statistics, used in eval mode (frozen source BN).
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
        self.eval()

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(self.meta_in(x))
        x = self.relu(self.meta_bn(self.block(x)) + x) + self.meta_block(x)
        return self.meta_out(self.tail(x))


def _entropy(logits: Tensor) -> Tensor:
    """Mean per-pixel entropy of ``(N, C, H, W)`` logits."""
    log_p = logits.log_softmax(dim=1)
    return -(log_p.exp() * log_p).sum(dim=1).mean()


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('inplace', [True, False])
@pytest.mark.parametrize('bias', [True, False])
def test_toy_gradients_match_stock(device: str, inplace: bool,
                                   bias: bool) -> None:
    torch.manual_seed(0)
    model = ToyNet(inplace, bias).double().to(device)
    x = torch.randn(2, 3, 29, 35, dtype=torch.float64, device=device)

    def loss() -> Tensor:
        return _entropy(model(x))

    with torch.no_grad():
        out_stock = model(x)
    stock = _grads(model, loss)
    stock_bytes = saved_tensor_bytes(loss, model, include_weights=False)
    make_lean(model)
    with torch.no_grad():
        torch.testing.assert_close(model(x), out_stock, rtol=0, atol=0)
    _assert_same_grads(stock, _grads(model, loss))
    assert saved_tensor_bytes(
        loss, model, include_weights=False) < 0.8 * stock_bytes


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize(
    'kwargs',
    [
        dict(stride=1, padding=1),
        dict(stride=2, padding=(0, 2), dilation=(2, 1)),
        dict(stride=(1, 2), padding=3, dilation=3, groups=4),
        dict(stride=2, padding=1, groups=8),  # depthwise
        dict(padding='same', dilation=2),
        dict(padding='valid'),
        dict(padding=(1, 0), padding_mode='reflect'),  # stock path
        dict(padding='same', kernel_size=4),  # asymmetric: stock path
    ])
def test_lean_conv_matches_stock(device: str, kwargs: dict) -> None:
    torch.manual_seed(0)
    kwargs = {'kernel_size': 3, **kwargs}
    conv = nn.Conv2d(8, 16, **kwargs).double().to(device)
    _freeze(conv)
    conv.bias.requires_grad_(True)  # trainable bias, frozen weight
    x = torch.randn(
        2, 8, 11, 13, dtype=torch.float64, device=device, requires_grad=True)

    def run() -> List[Tensor]:
        out = conv(x)
        return torch.autograd.grad(out.sin().sum(), [x, conv.bias])

    stock = run()
    conv.__class__ = LeanConv2d
    for a, b in zip(run(), stock):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-10)


def test_frozen_conv_saves_only_weight() -> None:
    x = torch.randn(1, 4, 32, 32, requires_grad=True)
    weight = torch.randn(8, 4, 3, 3)
    report = profile_saved_tensors(
        lambda: frozen_conv2d(x, weight, padding=1).sum())
    assert report.activation_bytes == weight.nbytes  # a plain tensor here
    stock = saved_tensor_bytes(lambda: F.conv2d(x, weight, padding=1).sum())
    assert stock == x.nbytes + weight.nbytes


def test_trainable_conv_keeps_weight_gradient() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 4, 3, padding=1)
    ref = copy.deepcopy(conv)
    make_lean(conv)
    assert isinstance(conv, LeanConv2d)
    x = torch.randn(2, 4, 9, 9, requires_grad=True)
    conv(x).square().sum().backward()
    ref(x).square().sum().backward()
    torch.testing.assert_close(conv.weight.grad, ref.weight.grad)
    # Trainability is checked per call: freezing after conversion goes lean.
    conv.weight.requires_grad_(False)
    report = profile_saved_tensors(lambda: conv(x).sum(), conv)
    assert report.activation_bytes == 0
    # ... and unfreezing again restores the weight gradient.
    conv.weight.requires_grad_(True)
    conv.weight.grad = None
    conv(x).square().sum().backward()
    torch.testing.assert_close(conv.weight.grad, ref.weight.grad)


def test_make_lean_keeps_state_dict_and_undo_restores() -> None:
    torch.manual_seed(0)
    model = ToyNet(inplace=True, bias=True)
    classes = {name: type(m) for name, m in model.named_modules()}
    before = copy.deepcopy(model.state_dict())
    shared = model.stem[0].weight
    assert make_lean(model) is model
    assert isinstance(model.stem[0], LeanConv2d)
    assert isinstance(model.stem[2], LeanReLU)
    assert isinstance(model.stem[3], LeanMaxPool2d)
    assert isinstance(model.stem[1], nn.BatchNorm2d)  # BN untouched
    assert model.stem[0].weight is shared
    after = model.state_dict()
    assert list(after) == list(before)
    for key in before:
        assert torch.equal(after[key], before[key]), key
    assert undo_lean(model) is model
    assert {name: type(m) for name, m in model.named_modules()} == classes


def test_make_lean_skips_conv_subclasses() -> None:

    class CustomConv(nn.Conv2d):

        def forward(self, x: Tensor) -> Tensor:
            return super().forward(x) * 2

    model = nn.Sequential(CustomConv(2, 2, 1))
    make_lean(model)
    assert type(model[0]) is CustomConv


@pytest.mark.parametrize('numel', [1, 7, 8, 9, 63, 1000])
def test_pack_bits_round_trip(numel: int) -> None:
    mask = torch.rand(numel) > 0.5
    packed = pack_bits(mask)
    assert packed.dtype == torch.uint8
    assert packed.shape == (math.ceil(numel / 8), )
    assert torch.equal(unpack_bits(packed, mask.shape), mask)
    mask3d = torch.rand(3, 5, 7) > 0.3
    assert torch.equal(unpack_bits(pack_bits(mask3d), mask3d.shape), mask3d)


@pytest.mark.parametrize('device', DEVICES)
def test_packed_relu_matches_stock_and_saves_one_bit(device: str) -> None:
    x = torch.randn(3, 5, 7, dtype=torch.float64, device=device)
    x[0, 0, :3] = 0.0  # ties at zero: stock passes no gradient there
    x.requires_grad_(True)
    g = torch.randn_like(x)
    expected = torch.autograd.grad(F.relu(x), x, g)[0]
    out = packed_relu(x)
    torch.testing.assert_close(out, F.relu(x))
    torch.testing.assert_close(torch.autograd.grad(out, x, g)[0], expected)
    assert saved_tensor_bytes(lambda: packed_relu(x).sum()) == math.ceil(
        x.numel() / 8)
    assert saved_tensor_bytes(lambda: F.relu(x).sum()) == x.nbytes


def test_inplace_relu_does_not_corrupt_saved_input() -> None:
    # A trainable conv saves its input; an in-place ReLU on that input
    # would bump its version counter and fail backward.
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 3, 1)
    relu = nn.ReLU(inplace=True)
    make_lean(relu)
    x = torch.randn(1, 3, 4, 4, requires_grad=True)
    h = x * 1.0
    y = conv(h)
    relu(h)
    (y.sum() + h.sum()).backward()
    assert conv.weight.grad is not None
    with torch.no_grad():  # inference honours inplace
        z = torch.randn(4)
        assert relu(z) is z


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize(
    'kwargs',
    [
        dict(kernel_size=3, stride=2, padding=1),  # ResNet stem
        dict(kernel_size=2),
        dict(kernel_size=(3, 2), stride=(1, 2), padding=(1, 0)),
        dict(kernel_size=3, stride=2, dilation=2, padding=1),
        dict(kernel_size=3, stride=2, ceil_mode=True),
        dict(kernel_size=3, stride=1, padding=1),  # heavily overlapping
    ])
def test_compact_max_pool_matches_stock(device: str, kwargs: dict) -> None:
    torch.manual_seed(0)
    x = torch.randn(
        2, 3, 13, 16, dtype=torch.float64, device=device, requires_grad=True)
    pool = nn.MaxPool2d(**kwargs)
    out = pool(x)
    g = torch.randn_like(out)
    expected = torch.autograd.grad(out, x, g)[0]
    pool.__class__ = LeanMaxPool2d
    lean_out = pool(x)
    torch.testing.assert_close(lean_out, out, rtol=0, atol=0)
    torch.testing.assert_close(
        torch.autograd.grad(lean_out, x, g)[0], expected)
    # One byte per output element instead of the input plus int64 indices.
    assert saved_tensor_bytes(lambda: pool(x).sum()) == out.numel()


def test_max_pool_with_repeated_maxima() -> None:
    # Constant input: every window's argmax is its first valid position.
    x = torch.ones(1, 1, 6, 6, requires_grad=True)
    out = compact_max_pool2d(x, 3, 2, 1)
    (grad, ) = torch.autograd.grad(out.sum(), x)
    (expected, ) = torch.autograd.grad(F.max_pool2d(x, 3, 2, 1).sum(), x)
    torch.testing.assert_close(grad, expected)


def test_resize_and_concat_save_nothing() -> None:
    # Stock autograd already keeps only sizes for these ops.
    x = torch.randn(1, 4, 8, 8, requires_grad=True)
    for align_corners in (False, True):

        def loss() -> Tensor:
            up = F.interpolate(
                x, size=(16, 20), mode='bilinear', align_corners=align_corners)
            return torch.cat([up, up * 1.0], dim=1).sum()

        assert saved_tensor_bytes(loss) == 0


def test_probe_deduplicates_views_and_splits_weights() -> None:
    base = torch.randn(8)  # 32 bytes, saved through two views
    w = torch.randn(4, requires_grad=True)
    report = profile_saved_tensors(lambda: (w * base[:4]).sum() +
                                   (w * base[4:]).sum())
    assert report.activation_bytes == base.nbytes
    assert report.weight_bytes == 0
    conv = nn.Conv2d(2, 3, 1)
    x = torch.randn(1, 2, 4, 4, requires_grad=True)
    report = profile_saved_tensors(lambda: conv(x).sum(), conv)
    assert report.weight_bytes == conv.weight.nbytes
    assert report.activation_bytes == x.nbytes
    assert report.total_bytes == saved_tensor_bytes(lambda: conv(x).sum())
    assert 'weight' in report.table()


def _deeplabv3plus_r18() -> nn.Module:
    # The compat shims that let mmseg import on mmcv-lite are already
    # active: importing ``mmseg_ecotta.models`` above applied them.
    pytest.importorskip('mmseg')
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    norm_cfg = dict(type='BN', requires_grad=True)
    cfg = dict(
        type='EncoderDecoder',
        backbone=dict(
            type='ResNetV1c',
            depth=18,
            out_indices=(0, 1, 2, 3),
            dilations=(1, 1, 2, 4),
            strides=(1, 2, 1, 1),
            norm_cfg=norm_cfg,
            contract_dilation=True),
        decode_head=dict(
            type='DepthwiseSeparableASPPHead',
            in_channels=512,
            in_index=3,
            channels=64,
            dilations=(1, 12, 24, 36),
            c1_in_channels=64,
            c1_channels=16,
            dropout_ratio=0.1,
            num_classes=19,
            norm_cfg=norm_cfg,
            align_corners=False,
            loss_decode=dict(type='CrossEntropyLoss')))
    return MODELS.build(cfg)


class AffineEvalBN(nn.BatchNorm2d):
    """Eval-mode BN as ``x * scale + shift``, as the plugin's frozen BN.

    With a frozen affine, scale and shift are built under no_grad, so the
    backward keeps no activation; stock ``F.batch_norm`` keeps its input.
    Used to isolate what :func:`make_lean` controls.
    """

    def forward(self, x: Tensor) -> Tensor:
        trainable = self.weight.requires_grad or self.bias.requires_grad
        with torch.set_grad_enabled(trainable and torch.is_grad_enabled()):
            scale = self.weight * (self.running_var + self.eps).rsqrt()
            shift = self.bias - self.running_mean * scale
        return x * scale.view(-1, 1, 1) + shift.view(-1, 1, 1)


@pytest.mark.parametrize('device', DEVICES)
@pytest.mark.parametrize('affine_bn', [False, True])
def test_deeplabv3plus_r18_gradients_and_bytes(device: str,
                                               affine_bn: bool) -> None:
    torch.manual_seed(0)
    model = _deeplabv3plus_r18().to(device).eval()
    _freeze(model)
    # Force the gradient through the frozen path: layer4 BN affine and the
    # first conv of layer1 train, everything between them is frozen.
    model.backbone.layer1[0].conv1.weight.requires_grad_(True)
    for m in model.backbone.layer4.modules():
        if isinstance(m, nn.BatchNorm2d):
            for p in m.parameters():
                p.requires_grad_(True)
    if affine_bn:
        for m in model.modules():
            if type(m) is nn.BatchNorm2d:
                m.__class__ = AffineEvalBN
    x = torch.randn(1, 3, 64, 128, device=device)

    def loss() -> Tensor:
        return _entropy(model._forward(x))

    stock = _grads(model, loss)
    stock_bytes = saved_tensor_bytes(loss, model, include_weights=False)
    make_lean(model)
    lean = _grads(model, loss)
    lean_bytes = saved_tensor_bytes(loss, model, include_weights=False)
    _assert_same_grads(stock, lean)
    # Stock eval BN keeps its input (a conv output) in both runs, hence
    # 0.6. With affine BN, most of what lean keeps (about 80%) are the
    # inputs of layer4's trainable BNs, needed for their own gradients.
    ratio = 0.35 if affine_bn else 0.6
    assert lean_bytes <= ratio * stock_bytes, (lean_bytes, stock_bytes)


def _mit_block_step(block: nn.Module, x: Tensor, hw: tuple):
    """Output, gradients (input's first) and saved storages of a step."""
    with SavedTensorRecorder(block) as recorder:
        out = block(x, hw)
    report = recorder.report()
    inputs = [x] + [p for p in block.parameters() if p.requires_grad]
    grads = torch.autograd.grad(out.square().sum(), inputs)
    return out, grads, report


@pytest.mark.parametrize('trainable', [False, True])
def test_segformer_block_matches_stock_without_the_attention_matrix(
        trainable: bool) -> None:
    # MiT's first stage: one head, keys and values on an 8x coarser grid.
    torch.manual_seed(0)
    h, w, sr = 24, 32, 8
    # Double precision: the fused attention rounds differently.
    block = TransformerEncoderLayer(16, 1, 64, sr_ratio=sr).double().eval()
    for p in block.parameters():
        p.requires_grad_(trainable)  # frozen (EcoTTA) or all (CoTTA)
    lean = make_lean(copy.deepcopy(block))
    assert type(lean.attn) is lean_backward.LeanEfficientMultiheadAttention
    assert type(lean.ffn.layers[0]) is lean_backward.LeanMMCVConv2d
    x = torch.randn(1, h * w, 16, dtype=torch.double, requires_grad=True)
    stock_out, stock_grads, stock_saved = _mit_block_step(block, x, (h, w))
    lean_out, lean_grads, lean_saved = _mit_block_step(lean, x, (h, w))
    torch.testing.assert_close(lean_out, stock_out)
    for a, b in zip(lean_grads, stock_grads):
        torch.testing.assert_close(a, b)
    # Stock keeps the softmax of (queries x keys); lean keeps none.
    attention = (h * w, (h // sr) * (w // sr))
    assert any(tuple(g.shape[-2:]) == attention for g in stock_saved.groups)
    assert not any(tuple(g.shape[-2:]) == attention for g in lean_saved.groups)
    if not trainable:  # and no input of a frozen convolution either
        assert lean_saved.activation_bytes < 0.6 * (
            stock_saved.activation_bytes)


def test_make_lean_converts_mmcv_convs_and_segformer_attention() -> None:
    model = nn.Sequential(
        MMCVConv2d(4, 4, 1), EfficientMultiheadAttention(8, 2, sr_ratio=2))
    make_lean(model)
    assert [type(m) for m in model] == [
        lean_backward.LeanMMCVConv2d,
        lean_backward.LeanEfficientMultiheadAttention
    ]
    # Still what they were, for code that checks.
    assert isinstance(model[0], (MMCVConv2d, LeanConv2d))
    undo_lean(model)
    assert [type(m)
            for m in model] == [MMCVConv2d, EfficientMultiheadAttention]


def test_frozen_linear_keeps_only_its_weight_in_stock_autograd() -> None:
    # Why make_lean has no linear layer: torch already saves no input when
    # the weight needs no gradient (attention projections, frozen MLPs).
    x = torch.randn(2, 7, 8, requires_grad=True)
    weight, bias = torch.randn(16, 8), torch.randn(16)
    report = profile_saved_tensors(lambda: F.linear(x, weight, bias).sum())
    assert report.activation_bytes == weight.nbytes
