# DeepLabV3 R50-D8 (mmseg's stock Cityscapes model) on one device, with
# EcoTTA meta networks: K=5 partitions [2, 2, 4, 4, 4], 3x3 meta convs.
_base_ = 'mmseg::_base_/models/deeplabv3_r50-d8.py'
norm_cfg = dict(type='BN', requires_grad=True)  # one device: no SyncBN
model = dict(
    type='MetaEncoderDecoder',
    pretrained=None,  # weights come from the checkpoint, never downloaded
    data_preprocessor=dict(size=None),  # test images keep their own size
    # Warm-up and plain inference normalise as EcoTTA's test stream does
    # (batch size 1): every BN layer, frozen and meta, by each image's own
    # statistics. The EcoTTA run configs keep meta_norm_mode and hold the
    # frozen layers' statistics constant in the backward ('batch_const').
    frozen_norm_mode='sample',
    meta_norm_mode='sample',
    backbone=dict(
        type='MetaResNetV1c',
        partitions=5,
        meta_kernel_size=3,
        norm_cfg=norm_cfg),
    decode_head=dict(norm_cfg=norm_cfg),
    auxiliary_head=dict(norm_cfg=norm_cfg))
