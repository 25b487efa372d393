# The CamVid tiny DeepLabV3+ R18 with EcoTTA meta networks: K=5 partitions
# [1, 1, 2, 2, 2] over ResNet-18's 8 blocks, 3x3 meta convs. The frozen BN
# layers normalise by each batch's statistics, held constant in the
# backward, in the warm-up and at test time alike (one owner: this model).
_base_ = './deeplabv3plus_r18-tiny_camvid.py'
model = dict(
    type='MetaEncoderDecoder',
    frozen_norm_mode='batch_const',
    backbone=dict(type='MetaResNetV1c', partitions=5, meta_kernel_size=3))
