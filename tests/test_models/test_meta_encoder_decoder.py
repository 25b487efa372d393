"""MetaEncoderDecoder: the warm-up loss and the one owner of frozen BNs."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from mmseg_ecotta.models.norm import TTABatchNorm2d
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


@pytest.mark.parametrize('mode', ['source', 'batch', 'batch_const'])
def test_ecotta_normalises_frozen_bns_as_the_model_says(mode):
    model = build_model(TINY_META_MODEL, frozen_norm_mode=mode)
    method = build_tta_method(method_cfg('EcoTTA'), model)
    assert method.settings()['frozen_norm_mode'] == mode
    for name, module in model.named_modules():
        if isinstance(module, TTABatchNorm2d):
            expected = 'batch' if is_meta_name(name) else mode
            assert module.norm_mode == expected, name


def test_ecotta_refuses_a_second_owner_of_the_frozen_bn_mode():
    model = build_model(TINY_META_MODEL)
    with pytest.raises(TypeError, match=r"model\.frozen_norm_mode='batch'"):
        build_tta_method(dict(type='EcoTTA', frozen_norm_mode='batch'), model)
