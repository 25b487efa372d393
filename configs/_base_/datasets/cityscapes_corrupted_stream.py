# A weather stream without ACDC: Cityscapes val, corrupted on the fly by
# WeatherCorruption (ImageNet-C style, severity 5), in ACDC's order with
# darkness for night: fog -> darkness -> rain -> snow, 10 rounds. Images are
# corrupted at full resolution, then halved for the model (as ACDC's are).
# `corruptions` and `severity` are read when this file is parsed: a leaf
# config that changes them must redefine test_dataloader.dataset.domains.
custom_imports = dict(imports=['mmseg_ecotta'], allow_failed_imports=False)
dataset_type = 'CityscapesDataset'
data_root = 'data/cityscapes/'
corruptions = ['fog', 'darkness', 'rain', 'snow']
severity = 5
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='WeatherStreamDataset',
        rounds=10,
        domains=[
            dict(
                name=name,
                dataset=dict(
                    type=dataset_type,
                    data_root=data_root,
                    data_prefix=dict(
                        img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
                    pipeline=[
                        dict(type='LoadCheckedImageFromFile'),
                        dict(
                            type='WeatherCorruption',
                            corruption=name,
                            severity=severity),
                        dict(
                            type='Resize', scale=(1024, 512), keep_ratio=True),
                        dict(type='LoadCheckedAnnotations'),
                        dict(type='PackSegInputs')
                    ])) for name in corruptions
        ]))
test_evaluator = dict(type='ContinualIoUMetric', iou_metrics=['mIoU'])
