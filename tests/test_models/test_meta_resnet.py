"""MetaResNet: partitions, shapes, freezing and stock-checkpoint loading."""
import copy

import pytest
import torch
from mmseg.models.backbones import ResNetV1c

from mmseg_ecotta.models import (PARTITION_PRESETS, MetaResNetV1c,
                                 TTABatchNorm2d)
from mmseg_ecotta.models.norm import NORM_MODES
from mmseg_ecotta.models.segmentors import is_meta_name
from ..conftest import TINY_META_MODEL, TINY_MODEL, build_model

TINY = dict(depth=18, stem_channels=8, base_channels=8)


@pytest.mark.parametrize('depth', sorted(PARTITION_PRESETS))
@pytest.mark.parametrize('k', [4, 5])
def test_presets_cover_every_block(depth, k):
    net = MetaResNetV1c(
        depth=depth, partitions=k, base_channels=4, stem_channels=4)
    assert len(net.meta_nets) == k
    assert sum(net.partitions) == sum(net.stage_blocks)


def test_r50_presets_are_the_papers():
    assert PARTITION_PRESETS[50][4] == (3, 3, 5, 5)
    assert PARTITION_PRESETS[50][5] == (2, 2, 4, 4, 4)


def test_wrong_partition_total_names_valid_total():
    with pytest.raises(ValueError, match='summing to 8'):
        MetaResNetV1c(partitions=[2, 2, 2], **TINY)
    with pytest.raises(ValueError, match='no partition preset K=7'):
        MetaResNetV1c(partitions=7, **TINY)
    with pytest.raises(ValueError, match='positive odd'):
        MetaResNetV1c(meta_kernel_size=2, **TINY)


def test_meta_conv_strides_follow_downsampling_and_dilation():
    # D8: stage strides (1, 2, 1, 1) with dilation in stages 3-4; K=5 on
    # R18 is [1, 1, 2, 2, 2]: only partition 3 (layer2.0-1) downsamples.
    net = MetaResNetV1c(
        partitions=5, strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4), **TINY)
    assert [m.conv_block.conv.stride[0]
            for m in net.meta_nets] == [1, 1, 2, 1, 1]
    net = MetaResNetV1c(partitions=[3, 5], strides=(1, 2, 2, 2), **TINY)
    # blocks 0-2 hold layer2.0 (x2); blocks 3-7 hold layer3.0, layer4.0.
    assert [m.conv_block.conv.stride[0] for m in net.meta_nets] == [2, 4]


def test_dilated_meta_convs_take_their_partitions_dilation():
    # D8 with contract_dilation: blocks' dilations 1, 1, 1, 1, 1, 2, 2, 4;
    # K=5 ends its partitions at blocks 0, 1, 3, 5 and 7.
    kw = dict(strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4), **TINY)
    kw.update(contract_dilation=True)
    plain = MetaResNetV1c(partitions=5, **kw)
    dilated = MetaResNetV1c(partitions=5, dilated_meta=True, **kw)
    assert [m.conv_block.conv.dilation[0]
            for m in dilated.meta_nets] == [1, 1, 1, 2, 4]
    assert {m.conv_block.conv.dilation[0] for m in plain.meta_nets} == {1}
    # The same parameters: a checkpoint of either loads into the other.
    dilated.load_state_dict(plain.state_dict())


@pytest.mark.parametrize('kernel, dilated', [(1, False), (3, False),
                                             (3, True)])
@pytest.mark.parametrize('partitions', [4, 5, [3, 5], [1, 6, 1]])
def test_output_shapes_match_stock_resnet(kernel, dilated, partitions):
    kw = dict(strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4), **TINY)
    stock = ResNetV1c(**kw)
    meta = MetaResNetV1c(
        partitions=partitions,
        meta_kernel_size=kernel,
        dilated_meta=dilated,
        **kw)
    stock.eval(), meta.eval()  # mmseg's ResNet.train() returns None
    x = torch.randn(1, 3, 48, 64)
    shapes = [o.shape for o in stock(x)]
    assert [o.shape for o in meta(x)] == shapes


def test_unwarmed_meta_network_changes_source_output():
    """Documented behaviour: meta_bn is the identity, the conv block not."""
    kw = dict(strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4), **TINY)
    stock = ResNetV1c(**kw)
    stock.init_weights()
    meta = MetaResNetV1c(partitions=5, **kw)
    meta.init_weights()
    missing, unexpected = meta.load_state_dict(stock.state_dict(), False)
    assert not unexpected and all(is_meta_name(k) for k in missing)
    stock.eval(), meta.eval()
    x = torch.randn(2, 3, 48, 64)
    with torch.no_grad():
        assert not torch.allclose(meta(x)[-1], stock(x)[-1], atol=1e-3)
        # Silence the conv blocks: what remains (meta_bn) is the identity.
        for meta_net in meta.meta_nets:
            meta_net.conv_block.conv.weight.zero_()
        for a, b in zip(stock(x), meta(x)):
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)


def test_partition_outputs_recorded_only_inside_the_block():
    net = MetaResNetV1c(partitions=5, **TINY)
    net.eval()
    x = torch.randn(1, 3, 32, 32)
    with net.recording_partitions() as pairs:
        outs = net(x)
    net(x)
    assert len(pairs) == 5  # the forward outside added nothing
    with pytest.raises(RuntimeError, match='already active'):
        with net.recording_partitions(), net.recording_partitions():
            pass
    adapted, frozen = pairs[-1]
    assert adapted.shape == frozen.shape
    assert adapted is outs[-1]


def test_meta_segmentor_freezes_everything_but_meta_networks():
    model = build_model(TINY_META_MODEL)
    for name, p in model.named_parameters():
        assert p.requires_grad == is_meta_name(name), name
    frozen_bns = [
        n for n, m in model.named_modules()
        if isinstance(m, TTABatchNorm2d) and not is_meta_name(n)
    ]
    assert any(n.startswith('decode_head.') for n in frozen_bns)
    # Without a meta_norm_mode the meta BNs stay plain BN layers.
    plain = build_model(TINY_META_MODEL, meta_norm_mode=None)
    assert not any(
        is_meta_name(n)
        for n, m in plain.named_modules() if isinstance(m, TTABatchNorm2d))


@pytest.mark.parametrize('norm_mode', NORM_MODES)
def test_frozen_running_stats_never_move(norm_mode):
    model = build_model(TINY_META_MODEL, frozen_norm_mode=norm_mode)
    before = copy.deepcopy(model.state_dict())
    x = torch.randn(2, 3, 64, 128)
    for mode in (True, False):
        model.train(mode)
        model(x, mode='tensor').mean().backward()
    after = model.state_dict()
    for key, value in before.items():
        if not is_meta_name(key):
            assert torch.equal(value, after[key]), key


def test_meta_segmentor_requires_meta_backbone():
    with pytest.raises(TypeError, match='MetaResNetV1c'):
        build_model(TINY_MODEL, type='MetaEncoderDecoder')


def test_unknown_norm_mode_lists_valid_ones():
    with pytest.raises(ValueError, match="'batch_const'"):
        build_model(TINY_META_MODEL, frozen_norm_mode='running')
