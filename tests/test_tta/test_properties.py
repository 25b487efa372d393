"""Property-based checks: random tensors through the losses and backbone."""
import functools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mmseg_ecotta.tta.losses import (confident_entropy_loss, entropy_map,
                                     mean_entropy_loss, self_distillation_loss)
from ..conftest import TINY_META_MODEL, build_model

SETTINGS = settings(max_examples=20, deadline=None)
# Both float widths the losses meet: float32 (CPU/GPU) and float64.
FLOATS = st.sampled_from([torch.float32, torch.float64])
VALID_SHAPE = st.tuples(
    st.integers(1, 3), st.integers(1, 6), st.integers(1, 8), st.integers(1, 8))
SCALE = st.floats(0.01, 100.0)  # logit magnitudes, up to very peaked


def _logits(shape, dtype, scale, seed) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=torch.float64) * scale
    return x.to(dtype).requires_grad_()


def _entropy_gradient(logits: torch.Tensor,
                      pixels: torch.Tensor) -> torch.Tensor:
    """The gradient of the mean entropy over ``pixels``, in closed form.

    ``dH/dz_k = -p_k (log p_k + H)`` per pixel, in float64, divided by
    the number of pixels averaged over; zero elsewhere.
    """
    log_p = logits.detach().double().log_softmax(1)
    p = log_p.exp()
    h = -(p * log_p).sum(1, keepdim=True)
    grad = -p * (log_p + h) * pixels[:, None]
    return grad / max(int(pixels.sum()), 1)


@SETTINGS
@given(VALID_SHAPE, FLOATS, SCALE, st.integers(0, 2**16), st.floats(0.0, 5.0))
def test_valid_logits_give_finite_scalars_and_exact_gradients(
        shape, dtype, scale, seed, threshold):
    for loss_fn in (mean_entropy_loss,
                    functools.partial(
                        confident_entropy_loss, threshold=threshold)):
        logits = _logits(shape, dtype, scale, seed)
        loss = loss_fn(logits)
        assert loss.ndim == 0 and torch.isfinite(loss)
        assert -1e-6 <= float(loss) <= math.log(shape[1]) + 1e-4
        loss.backward()
        pixels = torch.ones_like(logits[:, 0], dtype=torch.bool)
        if loss_fn is not mean_entropy_loss:  # as the loss selects them
            pixels = entropy_map(logits.detach()) < threshold
        expected = _entropy_gradient(logits, pixels)
        # Rounding: log-softmax loses eps * |z| per element; each pixel's
        # gradient is divided by the pixels averaged over.
        eps = torch.finfo(dtype).eps
        rounding = 10 * eps * (1 + float(logits.detach().abs().max()))
        torch.testing.assert_close(
            logits.grad.double(),
            expected,
            rtol=100 * eps,
            atol=rounding / max(int(pixels.sum()), 1))
    entropy = entropy_map(_logits(shape, dtype, scale, seed))
    assert entropy.shape == (shape[0], ) + shape[2:]


@SETTINGS
@given(
    st.lists(st.integers(0, 5), min_size=0,
             max_size=6).filter(lambda s: len(s) != 4 or 0 in s))
def test_logits_of_invalid_shape_are_refused(shape):
    logits = torch.zeros(shape)
    for loss_fn in (entropy_map, mean_entropy_loss,
                    functools.partial(confident_entropy_loss, threshold=1.)):
        with pytest.raises(ValueError, match=r'shape \(N, C, H, W\)'):
            loss_fn(logits)


@SETTINGS
@given(st.sampled_from([torch.int64, torch.uint8, torch.bool]))
def test_integer_logits_are_refused(dtype):
    with pytest.raises(TypeError, match='floating-point'):
        mean_entropy_loss(torch.zeros(1, 2, 3, 3, dtype=dtype))


@SETTINGS
@given(
    st.lists(VALID_SHAPE, min_size=1, max_size=4), FLOATS,
    st.integers(0, 2**16))
def test_self_distillation_gives_finite_loss_and_gradient(shapes, dtype, seed):
    pairs = [(_logits(s, dtype, 1.0,
                      seed + k), _logits(s, dtype, 1.0, seed - k - 1).detach())
             for k, s in enumerate(shapes)]
    loss = self_distillation_loss(pairs)
    assert loss.ndim == 0 and torch.isfinite(loss) and float(loss) >= 0
    loss.backward()
    for adapted, _ in pairs:
        assert torch.isfinite(adapted.grad).all()


@SETTINGS
@given(VALID_SHAPE, VALID_SHAPE)
def test_self_distillation_refuses_mismatched_shapes(first, second):
    if first == second:
        second = second[:3] + (second[3] + 1, )
    with pytest.raises(ValueError, match='must be tensors of one shape'):
        self_distillation_loss([(torch.zeros(first), torch.zeros(second))])


@functools.lru_cache()
def _model() -> torch.nn.Module:
    return build_model(TINY_META_MODEL).eval()


def _backbone() -> torch.nn.Module:
    # The segmentor stays alive in the cache: the backbone reports its
    # partition outputs to it.
    return _model().backbone


def _expected_size(size: int, strides) -> int:
    """Each stride-s 3x3 conv/pool with padding 1 maps n to ceil(n / s)."""
    for stride in strides:
        size = -(-size // stride)
    return size


@SETTINGS
@given(
    st.integers(1, 2), st.integers(1, 70), st.integers(1, 70),
    st.integers(0, 2**16))
def test_backbone_outputs_have_the_expected_strides(n, h, w, seed):
    backbone = _backbone()
    x = torch.randn(n, 3, h, w, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        outs = backbone(x)
    # Stem (2) and max-pool (2), then the stages' strides (1, 2, 1, 1).
    strides = [2, 2]
    for stage, out in enumerate(outs):
        strides.append(backbone.strides[stage])
        assert out.shape[0] == n
        assert out.shape[2:] == (_expected_size(h, strides),
                                 _expected_size(w, strides))
        assert torch.isfinite(out).all()


@SETTINGS
@given(
    st.one_of(
        st.tuples(
            st.integers(1, 2),
            st.integers(1, 5).filter(lambda c: c != 3), st.integers(8, 16),
            st.integers(8, 16)),
        st.lists(st.integers(1, 8), min_size=1,
                 max_size=5).filter(lambda s: len(s) != 4)))
def test_backbone_refuses_wrong_channels_or_dimensions(shape):
    with pytest.raises(ValueError, match=r'shape \(N, 3, H, W\)'):
        _backbone()(torch.zeros(shape))


def test_backbone_refuses_integer_images():
    with pytest.raises(TypeError, match='float images'):
        _backbone()(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
