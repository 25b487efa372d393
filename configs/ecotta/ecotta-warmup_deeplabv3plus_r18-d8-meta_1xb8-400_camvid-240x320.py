# EcoTTA warm-up of the stock-width DeepLabV3+ R18-D8: the tiny model's
# shipped warm-up recipe (train + val frames, half of the crops corrupted,
# cross-entropy plus the self-distilled regulariser, every BN layer on each
# image's statistics) on the stock-width meta model, from the stock-width
# CamVid source checkpoint, shortened as its source training is to fit two
# CPU cores: 400 iterations of 8 crops of 144x192.
# python tools/train.py THIS_CONFIG --work-dir work_dirs/camvid_warmup_r18-d8
_base_ = [
    './ecotta-warmup_deeplabv3plus_r18-tiny-meta_1xb8-1200_camvid-240x320.py'
]
load_from = 'data/checkpoints/deeplabv3plus_r18-d8_camvid-source.pth'
crop_size = (144, 192)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(stem_channels=64, base_channels=64),
    decode_head=dict(
        in_channels=512, channels=128, c1_in_channels=64, c1_channels=12),
    auxiliary_head=dict(
        type='FCNHead',
        in_channels=256,
        in_index=2,
        channels=64,
        num_convs=1,
        concat_input=False,
        dropout_ratio=0.1,
        num_classes=19,
        norm_cfg=_base_.norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4)))
train_pipeline = _base_.train_pipeline
train_pipeline[3] = dict(
    type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75)
train_dataloader = dict(
    dataset=dict(datasets=[
        dict(dataset, pipeline=train_pipeline)
        for dataset in _base_.train_dataloader.dataset.datasets
    ]))
max_iters = 400
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
default_hooks = dict(checkpoint=dict(interval=200, max_keep_ckpts=2))
