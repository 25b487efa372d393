# EcoTTA warm-up of DeepLabV3+ R50-D8 on Cityscapes: only the meta networks
# train, from mmseg's stock checkpoint, with the recipe of the dev
# benchmark's warm-ups (configs/ecotta/README.md): cross-entropy plus the
# self-distilled regulariser, every BN layer on each image's own statistics
# (the meta model's 'sample' modes), AdamW, every labelled Cityscapes frame
# (train + val: no ACDC stream holds them) with half of the crops corrupted
# by ImageNet-C corruptions no weather stream uses. The stock checkpoint's
# meta keys are missing: the meta networks start at their initialisation,
# which already changes the output (MetaNet), and this warm-up fits them.
# Not run at this scale here (no GPU, no Cityscapes); the stock-width R18-D8
# of the dev benchmark runs the same recipe.
# python tools/train.py THIS_CONFIG
_base_ = [
    '../_base_/models/deeplabv3plus_r50-d8_meta-k5.py',
    'mmseg::_base_/datasets/cityscapes.py',
    '../_base_/datasets/warmup_corruptions.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_80k.py'
]
custom_imports = dict(imports=['mmseg_ecotta'], allow_failed_imports=False)
crop_size = (512, 1024)
data_preprocessor = dict(size=crop_size)
model = dict(data_preprocessor=data_preprocessor, self_distill_weight=1.0)
load_from = 'checkpoints/deeplabv3plus_r50-d8_512x1024_80k_cityscapes_20200606_114049-f9fb496d.pth'  # noqa: E501
# The corruptions before the photometric distortion, as in the dev
# benchmark's warm-ups.
train_pipeline = _base_.train_pipeline
train_pipeline.insert(-2, _base_.corruption_aug)
# A few epochs of Cityscapes train + val (3475 images, batch 2 on one
# device).
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
