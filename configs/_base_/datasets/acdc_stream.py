# Cityscapes -> ACDC continual stream (CoTTA, CVPR 2022): the labelled train
# split of fog -> night -> rain -> snow, 10 rounds, batch 1, no shuffling.
# The model sees 960x540 images; the label is loaded after Resize, so
# IoUMetric scores at full label resolution.
custom_imports = dict(imports=['mmseg_ecotta'], allow_failed_imports=False)
dataset_type = 'ACDCDataset'
data_root = 'data/acdc/'
test_pipeline = [
    dict(type='LoadCheckedImageFromFile'),
    dict(type='Resize', scale=(960, 540), keep_ratio=True),
    dict(type='LoadCheckedAnnotations'),
    dict(type='PackSegInputs')
]
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='WeatherStreamDataset',
        domains=['fog', 'night', 'rain', 'snow'],
        rounds=10,
        dataset_template=dict(
            type=dataset_type,
            data_root=data_root,
            split='train',
            pipeline=test_pipeline)))
# mIoU per (round, domain), per-class IoU, CoTTA-style round table.
test_evaluator = dict(type='ContinualIoUMetric', iou_metrics=['mIoU'])
