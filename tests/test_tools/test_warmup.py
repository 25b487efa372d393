"""The warm-up recipe end to end: tools/train.py on a Cityscapes fixture."""
import os.path as osp
import subprocess
import sys

import torch

from mmseg_ecotta.models.segmentors import is_meta_name
from mmseg_ecotta.safe_load import load_checkpoint_file
from ..conftest import REPO, TINY_MODEL, build_model

WARMUP = osp.join(
    REPO, 'configs/ecotta/ecotta-warmup_deeplabv3plus_r18-tiny-meta_'
    '1xb8-1500_synthetic-128x256.py')


def test_warmup_trains_only_meta_networks(tmp_path, cityscapes_root):
    source = build_model(TINY_MODEL)
    source_ckpt = str(tmp_path / 'source.pth')
    torch.save({'state_dict': source.state_dict()}, source_ckpt)
    loader = dict(num_workers=0, persistent_workers=False)
    options = {
        'load_from': source_ckpt,
        # The shipped warm-up trains on the train and the val split.
        'train_dataloader.dataset.datasets.0.data_root': cityscapes_root,
        'train_dataloader.dataset.datasets.1.data_root': cityscapes_root,
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

    # What mmengine's runner wrote loads with the safe loader (issue 14).
    ckpt = load_checkpoint_file(str(work_dir / 'iter_3.pth'))
    losses = ckpt['message_hub']['log_scalars']['train/loss']
    assert losses.statistics('mean') > 0
    warmed = ckpt['state_dict']
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

    # Published, it needs no allow-list at all, and keeps every weight.
    published = str(tmp_path / 'published.pth')
    result = subprocess.run([
        sys.executable, 'tools/publish_checkpoint.py',
        str(work_dir / 'iter_3.pth'), published
    ],
                            cwd=REPO,
                            capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert torch.serialization.get_unsafe_globals_in_checkpoint(
        published) == []
    slim = torch.load(published, weights_only=True)
    assert slim['meta']['iter'] == 3
    assert set(slim['state_dict']) == set(warmed)
    for key, value in warmed.items():
        assert torch.equal(slim['state_dict'][key], value), key
