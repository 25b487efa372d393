# The embedded synthetic weather stream (ACDC layout, generated into
# data/synthetic/acdc by tools/make_synthetic_stream.py): fog -> night ->
# rain -> snow, 40 images each. A short default of 3 rounds; the full
# protocol (10 rounds) is --cfg-options test_dataloader.dataset.rounds=10.
custom_imports = dict(imports=['mmseg_ecotta'], allow_failed_imports=False)
data_root = 'data/synthetic/acdc/'
test_pipeline = [
    dict(type='LoadCheckedImageFromFile'),
    dict(type='Resize', scale=(256, 128), keep_ratio=True),
    dict(type='LoadCheckedAnnotations'),
    dict(type='PackSegInputs')
]
test_dataloader = dict(
    batch_size=1,
    num_workers=1,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='WeatherStreamDataset',
        domains=['fog', 'night', 'rain', 'snow'],
        rounds=3,
        dataset_template=dict(
            type='ACDCDataset',
            data_root=data_root,
            split='train',
            pipeline=test_pipeline)))
test_evaluator = dict(type='ContinualIoUMetric', iou_metrics=['mIoU'])
