# EcoTTA warm-up of SegFormer-B5 on Cityscapes: only the meta networks (one
# per MiT stage) train, from mmseg's released Cityscapes checkpoint, with
# the R50-D8 warm-up's recipe
# (ecotta-warmup_deeplabv3plus_r50-d8-meta-k5_1xb2-6k_cityscapes-512x1024):
# cross-entropy plus the self-distilled regulariser, meta and head BNs on
# each image's statistics, AdamW, Cityscapes train + val with half of the
# crops corrupted, at SegFormer's Cityscapes crop (1024x1024). Not run at
# this scale here (no GPU, no Cityscapes); the dev benchmark's B0 runs the
# same recipe.
# python tools/train.py THIS_CONFIG
_base_ = [
    '../_base_/models/segformer_mit-b5_meta.py',
    'mmseg::_base_/datasets/cityscapes_1024x1024.py',
    '../_base_/datasets/warmup_corruptions.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_80k.py'
]
custom_imports = dict(imports=['mmseg_ecotta'], allow_failed_imports=False)
crop_size = (1024, 1024)
model = dict(data_preprocessor=dict(size=crop_size), self_distill_weight=1.0)
load_from = 'checkpoints/segformer_mit-b5_8x1_1024x1024_160k_cityscapes_20211206_072934-87a052ec.pth'  # noqa: E501
train_pipeline = _base_.train_pipeline
train_pipeline.insert(-2, _base_.corruption_aug)
train_dataloader = dict(
    batch_size=2,
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
max_iters = 6000
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=2000)
# The dev benchmark warm-ups' optimizer (configs/_base_/schedules/
# synthetic_3k.py).
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-3, weight_decay=1e-4))
param_scheduler = [
    dict(
        type='PolyLR',
        eta_min=1e-5,
        power=0.9,
        begin=0,
        end=max_iters,
        by_epoch=False)
]
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=2000))
