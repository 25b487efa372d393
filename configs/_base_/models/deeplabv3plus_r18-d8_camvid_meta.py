# The stock-width DeepLabV3+ R18-D8 with EcoTTA meta networks: K=5
# partitions [1, 1, 2, 2, 2] over ResNet-18's 8 blocks, 3x3 meta convs,
# normalised as the tiny meta model is (deeplabv3plus_r18-tiny_camvid_meta).
_base_ = './deeplabv3plus_r18-d8_camvid.py'
model = dict(
    type='MetaEncoderDecoder',
    frozen_norm_mode='sample',
    meta_norm_mode='sample',
    backbone=dict(type='MetaResNetV1c', partitions=5, meta_kernel_size=3))
