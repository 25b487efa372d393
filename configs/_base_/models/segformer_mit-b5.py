# mmseg's stock SegFormer-B5 (MiT-B5 encoder, stage widths 64-128-320-512,
# 3-6-40-3 blocks; all-MLP head of 256 channels), the model of CoTTA's
# Cityscapes -> ACDC protocol, as `segformer_mit-b5_8xb1-160k_cityscapes-
# 1024x1024` builds it. Weights come from the released Cityscapes
# checkpoint (load_from), so no ImageNet initialisation is named; BN for
# SyncBN (one process); one forward per image for test-time adaptation.
_base_ = ['mmseg::_base_/models/segformer_mit-b0.py']
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    backbone=dict(init_cfg=None, embed_dims=64, num_layers=[3, 6, 40, 3]),
    decode_head=dict(in_channels=[64, 128, 320, 512], norm_cfg=norm_cfg),
    test_cfg=dict(mode='whole'))
