# EcoTTA warm-up of the stock-width DeepLabV3+ R18-D8: the tiny model's
# shipped warm-up recipe (train + val frames, half of the crops corrupted,
# cross-entropy plus the self-distilled regulariser, every BN layer on each
# image's statistics) on the stock-width meta model, from the stock-width
# CamVid source checkpoint.
# python tools/train.py THIS_CONFIG --work-dir work_dirs/camvid_warmup_r18-d8
_base_ = [
    './ecotta-warmup_deeplabv3plus_r18-tiny-meta_1xb8-1200_camvid-trainval-corruptaug-240x320.py'  # noqa: E501
]
load_from = 'data/checkpoints/deeplabv3plus_r18-d8_camvid-source.pth'
model = dict(
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
default_hooks = dict(checkpoint=dict(interval=300, max_keep_ckpts=2))
