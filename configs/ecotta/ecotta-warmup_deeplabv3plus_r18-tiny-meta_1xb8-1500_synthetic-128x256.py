# EcoTTA warm-up of the tiny model: only the meta networks train, on the
# clear synthetic source set's train and val scenes (240), from the shipped
# source checkpoint, half of the crops corrupted. The shipped warm-up
# (data/checkpoints/deeplabv3plus_r18-tiny_meta_synthetic-warmup.pth, made
# by `make checkpoints`); ablations/ holds the variants it was chosen over.
# python tools/train.py THIS_CONFIG
_base_ = [
    '../_base_/models/deeplabv3plus_r18-tiny_meta.py',
    '../_base_/datasets/synthetic_cityscapes.py',
    '../_base_/datasets/warmup_corruptions.py',
    '../_base_/schedules/synthetic_3k.py', 'mmseg::_base_/default_runtime.py'
]
custom_imports = dict(imports=['mmseg_ecotta'], allow_failed_imports=False)
load_from = 'data/checkpoints/deeplabv3plus_r18-tiny_synthetic-source.pth'
# Cross-entropy plus the self-distilled regulariser, every BN layer on
# each image's statistics (the meta model's 'sample' modes), as the CamVid
# warm-up; 1500 iterations.
model = dict(self_distill_weight=1.0)
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
train_cfg = dict(max_iters=max_iters, val_interval=500)
default_hooks = dict(checkpoint=dict(interval=max_iters))
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
