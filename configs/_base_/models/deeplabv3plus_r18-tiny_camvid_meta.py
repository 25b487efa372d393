# The CamVid tiny DeepLabV3+ R18 with EcoTTA meta networks: K=5 partitions
# [1, 1, 2, 2, 2] over ResNet-18's 8 blocks, 3x3 meta convs.
_base_ = './deeplabv3plus_r18-tiny_camvid.py'
model = dict(
    type='MetaEncoderDecoder',
    # Warm-up and plain inference normalise as EcoTTA's test stream does
    # (batch size 1): every BN layer, frozen and meta, by each image's own
    # statistics. The EcoTTA run configs keep meta_norm_mode and hold the
    # frozen layers' statistics constant in the backward ('batch_const').
    frozen_norm_mode='sample',
    meta_norm_mode='sample',
    backbone=dict(type='MetaResNetV1c', partitions=5, meta_kernel_size=3))
