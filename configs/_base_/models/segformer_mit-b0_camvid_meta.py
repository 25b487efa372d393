# The dev benchmark's SegFormer-B0 with EcoTTA meta networks: one partition
# per MiT stage (K=4: patch embedding, transformer blocks, stage norm), 3x3
# meta convs with the stage's stride, normalised as the DeepLab meta models
# are (deeplabv3plus_r18-d8_camvid_meta): the encoder's LayerNorms have no
# mode, so frozen_norm_mode sets the head's BN.
_base_ = './segformer_mit-b0_camvid.py'
model = dict(
    type='MetaEncoderDecoder',
    frozen_norm_mode='sample',
    meta_norm_mode='sample',
    backbone=dict(type='MetaMixVisionTransformer', meta_kernel_size=3))
