# EcoTTA warm-up: train only the meta networks on Cityscapes (supervised
# cross-entropy) while the stock network stays frozen, starting from mmseg's
# stock checkpoint. Its meta keys are missing: the meta networks start at
# their initialisation, which already changes the output (MetaNet), and
# this warm-up fits them to the source data.
# python tools/train.py THIS_CONFIG
_base_ = [
    '../_base_/models/deeplabv3plus_r50-d8_meta-k5.py',
    'mmseg::_base_/datasets/cityscapes.py', 'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_80k.py'
]
custom_imports = dict(imports=['mmseg_ecotta'], allow_failed_imports=False)
crop_size = (512, 1024)
data_preprocessor = dict(size=crop_size)
# Cross-entropy plus the self-distilled regulariser, as the tiny models'
# warm-ups (chosen on the dev benchmark; untested at this scale).
model = dict(data_preprocessor=data_preprocessor, self_distill_weight=1.0)
load_from = 'checkpoints/deeplabv3plus_r50-d8_512x1024_80k_cityscapes_20200606_114049-f9fb496d.pth'  # noqa: E501
# A few epochs of Cityscapes train (2975 images, batch 2 on one device).
train_dataloader = dict(batch_size=2)
train_cfg = dict(type='IterBasedTrainLoop', max_iters=6000, val_interval=2000)
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0005))
param_scheduler = [
    dict(
        type='PolyLR',
        eta_min=1e-4,
        power=0.9,
        begin=0,
        end=6000,
        by_epoch=False)
]
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=2000))
