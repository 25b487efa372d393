"""MetaEncoderDecoder: the warm-up loss and the one owner of BN modes."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from mmseg_ecotta.models.norm import NORM_MODES, TTABatchNorm2d
from mmseg_ecotta.models.segmentors import is_meta_name
from mmseg_ecotta.tta import build_tta_method
from ..conftest import TINY_META_MODEL, build_model, method_cfg


def _batch(n: int = 2, h: int = 64, w: int = 128):
    g = torch.Generator().manual_seed(0)
    inputs = torch.randn(n, 3, h, w, generator=g)
    samples = []
    for _ in range(n):
        sample = SegDataSample(
            metainfo=dict(img_shape=(h, w), ori_shape=(h, w)))
        sample.gt_sem_seg = PixelData(
            data=torch.randint(0, 19, (1, h, w), generator=g))
        samples.append(sample)
    return inputs, samples


def test_warmup_loss_adds_the_weighted_self_distillation():
    torch.manual_seed(0)
    model = build_model(TINY_META_MODEL, self_distill_weight=0.5).train()
    inputs, samples = _batch()
    losses = model.loss(inputs, samples)
    # By hand: the same forward, recorded, mean |adapted - frozen| summed.
    torch.manual_seed(0)
    with model.backbone.recording_partitions() as pairs:
        model.extract_feat(inputs)
    expected = 0.5 * sum(F.l1_loss(a, f) for a, f in pairs)
    assert float(expected) > 0
    torch.testing.assert_close(losses['loss_self_distill'], expected)
    model.extract_feat(inputs)
    assert len(pairs) == 5  # nothing recorded outside the block
    loss = sum(v for k, v in losses.items() if k.startswith('loss'))
    loss.backward()
    grads = {n for n, p in model.named_parameters() if p.grad is not None}
    assert grads and all(is_meta_name(n) for n in grads)


def test_warmup_without_the_term_is_mmseg_loss():
    model = build_model(TINY_META_MODEL).train()
    assert 'loss_self_distill' not in model.loss(*_batch())
    with pytest.raises(ValueError, match='self_distill_weight=-1'):
        build_model(TINY_META_MODEL, self_distill_weight=-1)


@pytest.mark.parametrize('mode', NORM_MODES)
def test_ecotta_normalises_bns_as_the_model_says(mode):
    meta_mode = 'source' if mode == 'sample' else 'sample'
    model = build_model(
        TINY_META_MODEL, frozen_norm_mode=mode, meta_norm_mode=meta_mode)
    method = build_tta_method(method_cfg('EcoTTA'), model)
    assert method.settings()['frozen_norm_mode'] == mode
    assert method.settings()['meta_norm_mode'] == meta_mode
    assert method.settings()['head_norm_mode'] == mode
    for name, module in model.named_modules():
        if isinstance(module, TTABatchNorm2d):
            expected = meta_mode if is_meta_name(name) else mode
            assert module.norm_mode == expected, name


def _head_stats_matter(model: torch.nn.Module) -> bool:
    """Whether the decode head's stored BN statistics change the logits.

    The image-pool branch (a 1x1 map) always uses them; it is left out.
    """
    x = torch.randn(1, 3, 64, 128, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = model(x, mode='tensor')
        for name, m in model.decode_head.named_modules():
            if isinstance(m, TTABatchNorm2d) and 'image_pool' not in name:
                m.running_mean.add_(1.0)
        after = model(x, mode='tensor')
    return not torch.allclose(before, after)


def test_heads_can_keep_their_stored_statistics():
    """head_norm_mode='source': the encoder adapts, the heads do not."""
    model = build_model(TINY_META_MODEL, head_norm_mode='source').eval()
    method = build_tta_method(method_cfg('EcoTTA'), model)
    assert method.settings()['head_norm_mode'] == 'source'
    heads, encoder = set(), set()
    for name, m in model.named_modules():
        if isinstance(m, TTABatchNorm2d) and not is_meta_name(name):
            (heads if name.startswith('decode_head') else encoder).add(
                m.norm_mode)
    assert (heads, encoder) == ({'source'}, {'sample'})
    assert _head_stats_matter(model)
    # Left unset, the heads follow frozen_norm_mode: stored statistics
    # are normalised away.
    assert not _head_stats_matter(build_model(TINY_META_MODEL).eval())
    with pytest.raises(ValueError, match="'nope'"):
        build_model(TINY_META_MODEL, head_norm_mode='nope')


@pytest.mark.parametrize(
    'key', ['frozen_norm_mode', 'head_norm_mode', 'meta_norm_mode'])
def test_ecotta_refuses_a_second_owner_of_a_bn_mode(key):
    model = build_model(TINY_META_MODEL)
    with pytest.raises(TypeError, match=rf"model\.{key}='batch'"):
        build_tta_method(dict(type='EcoTTA', **{key: 'batch'}), model)


def test_ecotta_refuses_meta_bns_left_on_running_statistics():
    model = build_model(TINY_META_MODEL, meta_norm_mode=None)
    with pytest.raises(ValueError, match="model.meta_norm_mode='sample'"):
        build_tta_method(method_cfg('EcoTTA'), model)
    with pytest.raises(ValueError, match="'nope'.*'batch_const', 'sample'"):
        build_model(TINY_META_MODEL, meta_norm_mode='nope')


def _logits_batched_and_alone(model, x):
    with torch.no_grad():
        batched = model(x, mode='tensor')
        alone = torch.cat([model(x[i:i + 1], mode='tensor') for i in (0, 1)])
    return batched, alone


def test_warmup_normalises_each_image_as_the_test_stream_does():
    """'sample' at batch 2 gives each image the logits it gets at batch 1.

    So a warm-up on batches of 8 trains the meta networks on exactly the
    normalisation the test stream (batch 1) uses. Plain batch statistics
    mix the images of a batch, the mismatch the 'sample' mode removes.
    """
    torch.manual_seed(0)
    x = torch.randn(2, 3, 64, 128)
    x[1] = x[1] * 3 + 2  # the two images' statistics differ
    # eval(): no dropout; the BN modes hold whatever train()/eval() says.
    model = build_model(TINY_META_MODEL).eval()
    batched, alone = _logits_batched_and_alone(model, x)
    torch.testing.assert_close(batched, alone, rtol=1e-4, atol=1e-4)
    mixed = build_model(
        TINY_META_MODEL, frozen_norm_mode='batch', meta_norm_mode='batch')
    mixed.load_state_dict(model.state_dict())
    batched, alone = _logits_batched_and_alone(mixed.eval(), x)
    assert not torch.allclose(batched, alone, rtol=1e-4, atol=1e-4)
