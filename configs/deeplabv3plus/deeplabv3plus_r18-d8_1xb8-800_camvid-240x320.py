# The real-image dev benchmark's stock-width source model: mmseg's
# DeepLabV3+ R18-D8 at its stock channel widths, trained from scratch (no
# ImageNet weights can be downloaded) on CamVid's 367 train frames at
# 240x320 with the tiny model's schedule, shortened to 800 iterations
# (about 4 s each on one CPU core); checkpoints every 250 iterations, so
# `--resume` continues a run:
#   python tools/train.py THIS_CONFIG --work-dir work_dirs/camvid_source_r18-d8
_base_ = [
    '../_base_/models/deeplabv3plus_r18-d8_camvid.py',
    '../_base_/datasets/camvid_cityscapes-layout.py',
    '../_base_/schedules/synthetic_3k.py', 'mmseg::_base_/default_runtime.py'
]
custom_imports = dict(imports=['mmseg_ecotta'], allow_failed_imports=False)
env_cfg = dict(cudnn_benchmark=False)
max_iters = 800
param_scheduler = [
    dict(
        type='PolyLR',
        eta_min=1e-5,
        power=0.9,
        begin=0,
        end=max_iters,
        by_epoch=False)
]
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=250, max_keep_ckpts=2))
