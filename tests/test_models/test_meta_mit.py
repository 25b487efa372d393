"""MetaMixVisionTransformer: stock keys, partitions, freezing, recording."""
import os.path as osp

import pytest
import torch
from mmseg.models.backbones import MixVisionTransformer

from mmseg_ecotta.models import MetaMixVisionTransformer, TTABatchNorm2d
from mmseg_ecotta.models.segmentors import is_meta_name
from ..conftest import REPO, build_model

SEGFORMER = osp.join(REPO, 'configs/_base_/models/segformer_mit-b0_camvid.py')
META_SEGFORMER = osp.join(
    REPO, 'configs/_base_/models/segformer_mit-b0_camvid_meta.py')
# A narrow MiT with a stage of two blocks, so cuts inside a stage exist.
TINY_MIT = dict(embed_dims=8, num_layers=[1, 2, 1, 1], num_heads=[1, 2, 2, 4])
TINY_HEAD = dict(in_channels=[8, 16, 16, 32], channels=16)


def build_tiny_segformer(config: str, **overrides) -> torch.nn.Module:
    """The dev benchmark's SegFormer(-meta) config, narrowed."""
    return build_model(
        config, backbone=TINY_MIT, decode_head=TINY_HEAD, **overrides)


def _stock_and_meta(**meta_kwargs):
    torch.manual_seed(0)
    stock = MixVisionTransformer(**TINY_MIT)
    stock.init_weights()
    meta = MetaMixVisionTransformer(**TINY_MIT, **meta_kwargs)
    meta.init_weights()
    result = meta.load_state_dict(stock.state_dict(), strict=False)
    assert not result.unexpected_keys
    assert all(is_meta_name(k) for k in result.missing_keys)
    stock.eval(), meta.eval()
    return stock, meta


def test_stock_segformer_weights_load_with_every_key_matched():
    stock = build_tiny_segformer(SEGFORMER)
    meta = build_tiny_segformer(META_SEGFORMER)
    result = meta.load_state_dict(stock.state_dict(), strict=False)
    assert not result.unexpected_keys
    assert result.missing_keys and all(
        k.startswith('backbone.meta_nets.') for k in result.missing_keys)
    # Every stock key is matched by name and shape; the rest are meta keys.
    original = {
        k: v.shape
        for k, v in meta.state_dict().items() if not is_meta_name(k)
    }
    assert original == {k: v.shape for k, v in stock.state_dict().items()}


@pytest.mark.parametrize('partitions', [None, [1, 1, 1, 2], [3, 2], [5]])
def test_silenced_meta_networks_give_the_stock_encoder(partitions):
    stock, meta = _stock_and_meta(partitions=partitions)
    x = torch.randn(2, 3, 45, 61)  # odd sizes: every stride rounds
    with torch.no_grad():
        # meta_bn in eval mode is the identity (up to 1/sqrt(1 + eps));
        # silencing the conv blocks leaves the frozen encoder alone.
        for meta_net in meta.meta_nets:
            meta_net.conv_block.conv.weight.zero_()
        expected, got = stock(x), meta(x)
    assert len(got) == len(expected) == 4
    for a, b in zip(expected, got):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)


def test_unwarmed_meta_networks_change_the_output():
    """Documented behaviour, as for MetaResNet: warm them up first."""
    stock, meta = _stock_and_meta()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(meta(x)[-1], stock(x)[-1], atol=1e-3)


def test_meta_convs_match_their_partitions_geometry():
    _, meta = _stock_and_meta()
    assert meta.partitions == (1, 2, 1, 1)  # one per stage
    convs = [m.conv_block.conv for m in meta.meta_nets]
    assert [c.stride[0] for c in convs] == [4, 2, 2, 2]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(3, 8),
                                                                (8, 16),
                                                                (16, 16),
                                                                (16, 32)]
    # Stage 1 and 2 in one partition, a cut inside stage 2, stages 3-4.
    _, meta = _stock_and_meta(partitions=[2, 1, 2])
    convs = [m.conv_block.conv for m in meta.meta_nets]
    assert [c.stride[0] for c in convs] == [8, 1, 4]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(3, 16),
                                                                (16, 16),
                                                                (16, 32)]


def test_bad_partitions_name_the_valid_total():
    with pytest.raises(ValueError, match='summing to 5'):
        MetaMixVisionTransformer(partitions=[1, 1, 1], **TINY_MIT)
    with pytest.raises(TypeError, match=r'\[1, 2, 1, 1\]'):
        MetaMixVisionTransformer(partitions=4, **TINY_MIT)
    with pytest.raises(ValueError, match='positive odd'):
        MetaMixVisionTransformer(meta_kernel_size=2, **TINY_MIT)
    _, meta = _stock_and_meta()
    with pytest.raises(TypeError, match='MetaMixVisionTransformer'):
        meta(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))


def test_partition_pairs_are_recorded_per_partition():
    stock, meta = _stock_and_meta(partitions=[1, 1, 1, 2])
    x = torch.randn(1, 3, 32, 48)
    with meta.recording_partitions() as pairs:
        outs = meta(x)
    meta(x)  # outside the block: not recorded
    assert len(pairs) == 4
    # The first partition reads the image: its frozen output is stock
    # stage 1; a stage's output is its last partition's adapted output.
    torch.testing.assert_close(pairs[0][1], stock(x)[0])
    assert pairs[0][0] is outs[0]
    assert pairs[3][0] is outs[3]
    # The cut inside stage 2 compares its token stream as an NCHW map.
    assert pairs[1][0].shape == pairs[1][1].shape == (1, 16, 4, 6)
    assert [a.shape == f.shape for a, f in pairs] == [True] * 4


@pytest.mark.parametrize('detach', [False, True])
def test_detached_recording_trains_only_its_own_meta_network(detach):
    _, meta = _stock_and_meta()
    for name, p in meta.named_parameters():
        p.requires_grad_(is_meta_name(name))
    with meta.recording_partitions(detach) as pairs:
        meta(torch.randn(1, 3, 32, 32))
    adapted, frozen = pairs[-1]
    (adapted - frozen.detach()).abs().mean().backward()
    reached = [
        any(p.grad is not None and p.grad.abs().sum() > 0
            for p in net.parameters()) for net in meta.meta_nets
    ]
    assert reached[-1] and any(reached[:-1]) != detach


def test_meta_segformer_freezes_everything_but_meta_networks():
    model = build_tiny_segformer(META_SEGFORMER)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(is_meta_name(n) for n in trainable)
    assert len(model.backbone.meta_nets) == 4
    # The head's BN is the frozen network's only BN (MiT uses LayerNorm).
    frozen_bns = [
        n for n, m in model.named_modules()
        if isinstance(m, TTABatchNorm2d) and not is_meta_name(n)
    ]
    assert frozen_bns and all(n.startswith('decode_head.') for n in frozen_bns)
