# The CamVid tiny DeepLabV3+ R18 with EcoTTA meta networks: K=5 partitions
# [1, 1, 2, 2, 2] over ResNet-18's 8 blocks, 3x3 meta convs. As warmed up
# (and for plain inference) the frozen BN layers use their stored
# statistics; the EcoTTA run config switches them to test-batch statistics.
_base_ = './deeplabv3plus_r18-tiny_camvid.py'
model = dict(
    type='MetaEncoderDecoder',
    frozen_norm_mode='source',
    backbone=dict(type='MetaResNetV1c', partitions=5, meta_kernel_size=3))
