# EcoTTA warm-up of the CamVid tiny model: only the meta networks train, on
# CamVid's train frames, from the shipped CamVid source checkpoint.
# python tools/train.py THIS_CONFIG
_base_ = [
    '../_base_/models/deeplabv3plus_r18-tiny_camvid_meta.py',
    '../_base_/datasets/camvid_cityscapes-layout.py',
    '../_base_/schedules/synthetic_3k.py', 'mmseg::_base_/default_runtime.py'
]
custom_imports = dict(imports=['mmseg_ecotta'], allow_failed_imports=False)
load_from = 'data/checkpoints/deeplabv3plus_r18-tiny_camvid-source.pth'
# Chosen on the dev benchmark's val frames (README, "EcoTTA on real
# frames"): warm up as the model will be used, with the frozen BN layers on
# per-batch statistics (the model's frozen_norm_mode) and one image per
# batch, as at test time; cross-entropy only (adding the self-distillation
# term made no measurable difference there).
train_dataloader = dict(batch_size=1)
max_iters = 300
param_scheduler = [
    dict(
        type='PolyLR',
        eta_min=1e-5,
        power=0.9,
        begin=0,
        end=max_iters,
        by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(interval=max_iters))
env_cfg = dict(cudnn_benchmark=False)
