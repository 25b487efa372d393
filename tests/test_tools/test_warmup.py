"""The warm-up recipe end to end: tools/train.py on a Cityscapes fixture."""
import os.path as osp
import subprocess
import sys

import torch

from mmseg_ecotta.models.segmentors import is_meta_name
from ..conftest import REPO, TINY_MODEL, build_model

WARMUP = osp.join(
    REPO, 'configs/warmup/'
    'warmup_deeplabv3plus_r18-tiny_meta_synthetic.py')


def test_warmup_trains_only_meta_networks(tmp_path, cityscapes_root):
    source = build_model(TINY_MODEL)
    source_ckpt = str(tmp_path / 'source.pth')
    torch.save({'state_dict': source.state_dict()}, source_ckpt)
    loader = dict(num_workers=0, persistent_workers=False)
    options = {
        'load_from': source_ckpt,
        'train_dataloader.dataset.data_root': cityscapes_root,
        'val_dataloader.dataset.data_root': cityscapes_root,
        'train_dataloader.batch_size': 2,
        'train_cfg.max_iters': 3,
        'train_cfg.val_interval': 3,
        'default_hooks.checkpoint.interval': 3,
        'default_hooks.logger.interval': 1,
        'optim_wrapper.optimizer.lr': 0.05,
    }
    for key in ('train_dataloader', 'val_dataloader'):
        options.update({f'{key}.{k}': v for k, v in loader.items()})
    work_dir = tmp_path / 'work'
    cmd = [
        sys.executable, 'tools/train.py', WARMUP, '--work-dir',
        str(work_dir), '--cfg-options'
    ] + [f'{k}={v}' for k, v in options.items()]
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'mIoU' in result.stdout + result.stderr  # validation ran

    warmed = torch.load(
        str(work_dir / 'iter_3.pth'), map_location='cpu',
        weights_only=False)['state_dict']
    original = source.state_dict()
    assert set(original) < set(warmed)
    for key, value in original.items():  # frozen: weights and BN stats
        assert torch.equal(warmed[key], value), key
    initial = build_model(TINY_MODEL.replace('tiny', 'tiny_meta'))
    moved = [
        k for k, v in initial.state_dict().items()
        if is_meta_name(k) and not torch.equal(v, warmed[k])
    ]
    assert any(k.endswith('conv_block.bn.weight') for k in moved)
    assert any(k.endswith('meta_bn.bias') for k in moved)
