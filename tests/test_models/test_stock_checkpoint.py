"""Stock mmseg Cityscapes checkpoints load into the EcoTTA variant."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint
from mmseg.registry import MODELS

from mmseg_ecotta.models.segmentors import is_meta_name
from ..conftest import REPO

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
