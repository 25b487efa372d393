# DeepLabV3 R50-D8 (mmseg's stock Cityscapes model) on one device, with
# EcoTTA meta networks: K=5 partitions [2, 2, 4, 4, 4], 3x3 meta convs.
_base_ = 'mmseg::_base_/models/deeplabv3_r50-d8.py'
norm_cfg = dict(type='BN', requires_grad=True)  # one device: no SyncBN
model = dict(
    type='MetaEncoderDecoder',
    pretrained=None,  # weights come from the checkpoint, never downloaded
    data_preprocessor=dict(size=None),  # test images keep their own size
    frozen_norm_mode='source',
    backbone=dict(
        type='MetaResNetV1c',
        partitions=5,
        meta_kernel_size=3,
        norm_cfg=norm_cfg),
    decode_head=dict(norm_cfg=norm_cfg),
    auxiliary_head=dict(norm_cfg=norm_cfg))
