# The synthetic warm-up with half of its crops corrupted by ImageNet-C
# corruptions that no weather stream uses (../_base_/datasets/
# warmup_corruptions.py), everything else as the shipped one. An
# exploratory variant, not the default (README, "Corruptions in the
# warm-up").
# python tools/train.py THIS_CONFIG --cfg-options randomness.seed=N
_base_ = [
    './ecotta-warmup_deeplabv3plus_r18-tiny-meta_1xb8-1500_synthetic-128x256.py',  # noqa: E501
    '../_base_/datasets/warmup_corruptions.py'
]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(
        type='RandomResize',
        scale=(256, 128),
        ratio_range=(0.75, 1.5),
        keep_ratio=True),
    dict(
        type='RandomCrop', crop_size={{_base_.crop_size}}, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5), {{_base_.corruption_aug}},
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
