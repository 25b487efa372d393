# The synthetic warm-up with half of its crops corrupted by one of ten
# ImageNet-C corruptions (imagecorruptions, through WeatherCorruption) at
# severity 1-3, everything else as the shipped one. None of them is a
# corruption of the weather streams (fog, snow; our darkness and rain) or
# looks like one (frost, spatter, brightness, contrast), and none moves
# pixels off their labels (elastic_transform, glass_blur, zoom_blur). An
# exploratory variant, not the default (README, "Corruptions in the
# warm-up").
# python tools/train.py THIS_CONFIG --cfg-options randomness.seed=N
_base_ = './ecotta-warmup_deeplabv3plus_r18-tiny-meta_1xb8-1500_synthetic-128x256.py'  # noqa: E501
corruptions = [
    'gaussian_noise', 'shot_noise', 'impulse_noise', 'speckle_noise',
    'defocus_blur', 'motion_blur', 'gaussian_blur', 'jpeg_compression',
    'pixelate', 'saturate'
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
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomApply',
        prob=0.5,
        transforms=dict(
            type='RandomChoice',
            transforms=[[
                dict(
                    type='WeatherCorruption',
                    corruption=corruption,
                    severity=severity)
            ] for corruption in corruptions for severity in (1, 2, 3)])),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
