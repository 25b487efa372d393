# The real-image dev benchmark's SegFormer source model: mmseg's stock
# SegFormer-B0 trained from scratch on CamVid's 367 train frames at 240x320
# on the stock-width DeepLab's schedule (800 iterations of 8 crops of
# 144x192, AdamW 2e-3, poly decay), sized for two CPU cores. Checkpoints
# every 250 iterations, so `--resume` continues a run (work dir of
# `make dev-checkpoints-segformer-b0`: work_dirs/camvid_source_segformer-b0):
#   python tools/train.py THIS_CONFIG --work-dir WORK_DIR
_base_ = [
    '../_base_/models/segformer_mit-b0_camvid.py',
    '../_base_/datasets/camvid_cityscapes-layout.py',
    '../_base_/schedules/synthetic_3k.py', 'mmseg::_base_/default_runtime.py'
]
custom_imports = dict(imports=['mmseg_ecotta'], allow_failed_imports=False)
env_cfg = dict(cudnn_benchmark=False)
crop_size = (144, 192)
model = dict(data_preprocessor=dict(size=crop_size))
train_pipeline = _base_.train_pipeline
train_pipeline[3] = dict(
    type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75)
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
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
