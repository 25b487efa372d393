# DeepLabV3+ R50-D8 with EcoTTA meta networks: K=5 partitions
# [2, 2, 4, 4, 4], 3x3 meta convs. Loads the stock checkpoint
# deeplabv3plus_r50-d8_512x1024_80k_cityscapes unchanged; its meta keys are
# missing, so the meta networks start at their initialisation, which already
# changes the output (MetaNet): warm them up first.
_base_ = './deeplabv3plus_r50-d8.py'
model = dict(
    type='MetaEncoderDecoder',
    # Warm-up and plain inference normalise as EcoTTA's test stream does
    # (batch size 1): every BN layer, frozen and meta, by each image's own
    # statistics. The EcoTTA run configs keep meta_norm_mode and hold the
    # frozen layers' statistics constant in the backward ('batch_const').
    frozen_norm_mode='sample',
    meta_norm_mode='sample',
    backbone=dict(type='MetaResNetV1c', partitions=5, meta_kernel_size=3))
