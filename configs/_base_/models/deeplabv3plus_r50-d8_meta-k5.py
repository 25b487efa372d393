# DeepLabV3+ R50-D8 with EcoTTA meta networks: K=5 partitions
# [2, 2, 4, 4, 4], 3x3 meta convs. Loads the stock checkpoint
# deeplabv3plus_r50-d8_512x1024_80k_cityscapes unchanged; its meta keys are
# missing, so the meta networks start at their initialisation, which already
# changes the output (MetaNet): warm them up first. As warmed up (and for
# plain inference) the frozen BN layers use their stored statistics; the
# EcoTTA run config switches them to test-batch statistics.
_base_ = './deeplabv3plus_r50-d8.py'
model = dict(
    type='MetaEncoderDecoder',
    frozen_norm_mode='source',
    backbone=dict(type='MetaResNetV1c', partitions=5, meta_kernel_size=3))
