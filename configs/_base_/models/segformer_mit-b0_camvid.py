# mmseg's stock SegFormer-B0 (MiT-B0 encoder, stage widths 32-64-160-256,
# all-MLP head of 256 channels; 3.7 M parameters) for the real-image dev
# benchmark's CamVid frames at 240x320, trained from scratch (no ImageNet
# weights can be downloaded here). Only the BN type changes (BN for SyncBN,
# one process). The encoder normalises with LayerNorm; the head's fusion
# layer is its only BN.
_base_ = ['mmseg::_base_/models/segformer_mit-b0.py']
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size=(192, 256)),  # training crops
    backbone=dict(init_cfg=None),
    decode_head=dict(norm_cfg=norm_cfg))
