# SegFormer-B5 with EcoTTA meta networks: one partition per MiT stage (K=4:
# patch embedding, transformer blocks, stage norm; 3-6-40-3 blocks), 3x3
# meta convs with the stage's stride. Loads mmseg's released Cityscapes
# checkpoint unchanged; its meta keys are missing, so the meta networks
# start at their initialisation, which already changes the output (MetaNet):
# warm them up first.
_base_ = './segformer_mit-b5.py'
model = dict(
    type='MetaEncoderDecoder',
    # Warm-up and plain inference normalise as EcoTTA's test stream does
    # (batch size 1): the meta BNs and the head's BN by each image's own
    # statistics (the encoder's LayerNorms have no mode). The EcoTTA run
    # config holds the head's statistics constant in the backward.
    frozen_norm_mode='sample',
    meta_norm_mode='sample',
    backbone=dict(type='MetaMixVisionTransformer', meta_kernel_size=3))
