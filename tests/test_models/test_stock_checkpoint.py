"""Stock mmseg Cityscapes checkpoints load into our configs' models.

The R50 DeepLabV3+ into the EcoTTA variant, the SegFormer-B5 into every
Cityscapes -> ACDC SegFormer config.
"""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint
from mmseg.registry import MODELS

from mmseg_ecotta.apis import build_model
from mmseg_ecotta.engine.source_checkpoint import check_checkpoint_fits
from mmseg_ecotta.models.segmentors import is_meta_name
from ..conftest import REPO
from ..test_safe_load import released_checkpoint

STOCK = 'mmseg::deeplabv3plus/deeplabv3plus_r50-d8_4xb2-80k_cityscapes-512x1024.py'  # noqa: E501
META = osp.join(REPO, 'configs/_base_/models/deeplabv3plus_r50-d8_meta-k5.py')


def _build(cfg: Config) -> torch.nn.Module:
    init_default_scope('mmseg')
    cfg.model.pretrained = None  # never download ImageNet weights
    # One device, no process group: plain BN, exactly as mmengine's
    # revert_sync_batchnorm would give (same keys).
    norm = dict(type='BN', requires_grad=True)
    for key in ('backbone', 'decode_head', 'auxiliary_head'):
        cfg.model[key].norm_cfg = norm
    return MODELS.build(cfg.model)


def test_stock_deeplabv3plus_r50_checkpoint_loads(tmp_path):
    stock_cfg = tmp_path / 'stock.py'
    stock_cfg.write_text(f"_base_ = '{STOCK}'\n")
    stock = _build(Config.fromfile(str(stock_cfg)))
    ckpt = str(tmp_path / 'stock.pth')
    torch.save({'state_dict': stock.state_dict(), 'meta': {}}, ckpt)

    meta = _build(Config.fromfile(META))
    loaded = load_checkpoint(meta, ckpt, map_location='cpu', strict=False)
    assert loaded['meta'] == {}
    meta_state = meta.state_dict()
    new_keys = set(meta_state) - set(stock.state_dict())
    assert new_keys and all(is_meta_name(k) for k in new_keys)
    assert not set(stock.state_dict()) - set(meta_state)  # nothing lost
    for key, value in stock.state_dict().items():
        assert torch.equal(meta_state[key], value), key


def test_checkpoint_with_mismatched_shapes_is_an_error(tmp_path):
    meta = _build(Config.fromfile(META))
    state = meta.state_dict()
    state['backbone.layer1.0.conv1.weight'] = torch.zeros(1, 1, 1, 1)
    ckpt = str(tmp_path / 'bad.pth')
    torch.save({'state_dict': state}, ckpt)
    with pytest.raises(RuntimeError, match='layer1.0.conv1.weight'):
        load_checkpoint(meta, ckpt, map_location='cpu', strict=True)


# mmseg's metafile pairs this config with the released Cityscapes weights
# segformer_mit-b5_8x1_1024x1024_160k_cityscapes_20211206_072934-87a052ec.pth
# (mmseg 0.x, MixVisionTransformer and SegformerHead keys; mmseg 1.x links
# the same file and loads it without conversion).
STOCK_B5 = 'mmseg::segformer/segformer_mit-b5_8xb1-160k_cityscapes-1024x1024.py'  # noqa: E501
B5_RUNS = sorted(
    glob.glob(
        osp.join(REPO, 'configs', '*',
                 '*_segformer_mit-b5_1xb1-10rounds_cityscapes2acdc-*.py')))


def one_value_each(state: dict) -> dict:
    """The same keys, shapes and dtypes, each tensor one value broadcast.

    Key ``i`` holds the value ``i`` everywhere, so a key loaded into the
    wrong place shows; the file is a few kB for B5's 82 M parameters.
    """
    for i, (key, value) in enumerate(state.items()):
        if value.dim():
            state[key] = torch.full(
                (1, ) * value.dim(), i, dtype=value.dtype).expand(value.shape)
    return state


def test_released_segformer_b5_checkpoint_loads_into_every_b5_config(tmp_path):
    methods = {osp.basename(osp.dirname(p)) for p in B5_RUNS}
    assert methods == {'source', 'bn_adapt', 'tent', 'eata', 'cotta'}
    init_default_scope('mmseg')
    stock_cfg = tmp_path / 'stock.py'
    stock_cfg.write_text(f"_base_ = '{STOCK_B5}'\n")
    cfg = Config.fromfile(str(stock_cfg))
    cfg.model.backbone.init_cfg = None  # never download ImageNet weights
    # One device: plain BN, as mmengine's revert_sync_batchnorm gives.
    cfg.model.decode_head.norm_cfg = dict(type='BN', requires_grad=True)
    state = one_value_each(MODELS.build(cfg.model).state_dict())
    ckpt = str(tmp_path / 'released.pth')
    released_checkpoint(ckpt, state, 'mmseg0')
    assert osp.getsize(ckpt) < 1e6
    # Every run config builds the same model: one load checks them all.
    runs = [Config.fromfile(p) for p in B5_RUNS]
    assert all(run.model == runs[0].model for run in runs)
    check_checkpoint_fits(MODELS.build(runs[0].model), ckpt)  # the hook's
    model = build_model(runs[0], ckpt)  # strict: every key matched
    loaded = model.state_dict()
    assert list(loaded) == list(state)
    for key, value in state.items():
        assert torch.equal(loaded[key], value), key
