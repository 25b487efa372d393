# EcoTTA warm-up of the CamVid tiny model: only the meta networks train, on
# CamVid's train and val frames (468), from the shipped CamVid source
# checkpoint, half of the crops corrupted. The shipped warm-up
# (data/checkpoints/deeplabv3plus_r18-tiny_camvid-meta-warmup.pth, made by
# `make dev-checkpoints`); ablations/ holds the variants it was chosen over.
# python tools/train.py THIS_CONFIG
_base_ = [
    '../_base_/models/deeplabv3plus_r18-tiny_camvid_meta.py',
    '../_base_/datasets/camvid_cityscapes-layout.py',
    '../_base_/datasets/warmup_corruptions.py',
    '../_base_/schedules/synthetic_3k.py', 'mmseg::_base_/default_runtime.py'
]
custom_imports = dict(imports=['mmseg_ecotta'], allow_failed_imports=False)
load_from = 'data/checkpoints/deeplabv3plus_r18-tiny_camvid-source.pth'
# Cross-entropy plus the self-distilled regulariser (the paper's warm-up
# loss), on batches of 8 crops, every BN layer on each image's own
# statistics (the meta model's 'sample' modes), as the test stream of
# single images normalises them; 1200 iterations.
model = dict(self_distill_weight=1.0)
max_iters = 1200
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
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(interval=max_iters))
env_cfg = dict(cudnn_benchmark=False)
# The base's pipeline with the corruptions (ImageNet-C corruptions that no
# weather stream uses) before its photometric distortion.
train_pipeline = _base_.train_pipeline
train_pipeline.insert(-2, _base_.corruption_aug)
# The base's dataset, once per split.
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ConcatDataset',
        datasets=[
            dict(
                _base_.train_dataloader.dataset,
                pipeline=train_pipeline,
                data_prefix=dict(
                    img_path='leftImg8bit/' + split,
                    seg_map_path='gtFine/' + split))
            for split in ('train', 'val')
        ]))
