# EcoTTA warm-up of the dev benchmark's SegFormer-B0: the stock-width R18-D8's
# recipe (ecotta-warmup_deeplabv3plus_r18-d8-meta_1xb8-400_camvid-240x320:
# train + val frames, half of the crops corrupted, cross-entropy plus the
# self-distilled regulariser, meta and head BNs on each image's statistics,
# AdamW, 400 iterations of 8 crops of 144x192) on the B0 meta model, from
# the CamVid B0 source checkpoint (`make dev-checkpoints-segformer-b0`).
# python tools/train.py THIS_CONFIG \
#     --work-dir work_dirs/camvid_warmup_segformer-b0
_base_ = [
    '../_base_/models/segformer_mit-b0_camvid_meta.py',
    '../_base_/datasets/camvid_cityscapes-layout.py',
    '../_base_/datasets/warmup_corruptions.py',
    '../_base_/schedules/synthetic_3k.py', 'mmseg::_base_/default_runtime.py'
]
custom_imports = dict(imports=['mmseg_ecotta'], allow_failed_imports=False)
load_from = 'data/checkpoints/segformer_mit-b0_camvid-source.pth'
crop_size = (144, 192)
model = dict(data_preprocessor=dict(size=crop_size), self_distill_weight=1.0)
max_iters = 400
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
    checkpoint=dict(interval=200, max_keep_ckpts=2))
env_cfg = dict(cudnn_benchmark=False)
# The base's pipeline at the source model's crop size, with the corruptions
# (ImageNet-C corruptions that no weather stream uses) before its
# photometric distortion.
train_pipeline = _base_.train_pipeline
train_pipeline[3] = dict(
    type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75)
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
