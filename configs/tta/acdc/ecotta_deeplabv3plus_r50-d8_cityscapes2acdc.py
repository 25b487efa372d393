# EcoTTA, DeepLabV3+ R50-D8, Cityscapes -> ACDC (CoTTA protocol, 10 rounds).
# python tools/test_tta.py THIS_CONFIG CHECKPOINT
_base_ = '../_base_/deeplabv3plus_r50-d8_cityscapes2acdc.py'
custom_hooks = [
    dict(type='TestTimeAdaptationHook', method=dict(type='EcoTTA'))
]
# The EcoTTA variant of the model; use the warmed-up checkpoint from
# configs/warmup/warmup_deeplabv3plus_r50-d8_meta-k5_cityscapes-512x1024.py
model = dict(
    type='MetaEncoderDecoder',
    frozen_norm_mode='batch_const',
    backbone=dict(type='MetaResNetV1c', partitions=5, meta_kernel_size=3))
