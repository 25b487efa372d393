# The real-image dev benchmark's source model: the narrow DeepLabV3+ R18-D8
# of the synthetic stream (stage widths 16-32-64-128; mmseg's stock R18 is
# 4x wider and ~10x slower to train on 2 CPU cores), trained from scratch
# (no ImageNet weights can be downloaded) with mmseg's own training on
# CamVid's 367 train frames at 240x320:
#   python tools/train.py THIS_CONFIG --work-dir work_dirs/camvid_source
_base_ = [
    '../_base_/models/deeplabv3plus_r18-tiny_camvid.py',
    '../_base_/datasets/camvid_cityscapes-layout.py',
    '../_base_/schedules/synthetic_3k.py', 'mmseg::_base_/default_runtime.py'
]
custom_imports = dict(imports=['mmseg_ecotta'], allow_failed_imports=False)
env_cfg = dict(cudnn_benchmark=False)
max_iters = 1500
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
        type='CheckpointHook', by_epoch=False, interval=500, max_keep_ckpts=3))
