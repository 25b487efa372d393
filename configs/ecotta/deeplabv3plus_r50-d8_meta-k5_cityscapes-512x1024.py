# DeepLabV3+ R50-D8 (mmseg's stock Cityscapes model) with EcoTTA meta
# networks: K=5 partitions [2, 2, 4, 4, 4], 3x3 meta convs. Loads the stock
# checkpoint deeplabv3plus_r50-d8_512x1024_80k_cityscapes unchanged.
_base_ = 'mmseg::deeplabv3plus/deeplabv3plus_r50-d8_4xb2-80k_cityscapes-512x1024.py'  # noqa: E501
custom_imports = dict(imports=['mmseg_ecotta'], allow_failed_imports=False)
norm_cfg = dict(type='BN', requires_grad=True)  # one device: no SyncBN
model = dict(
    type='MetaEncoderDecoder',
    pretrained=None,  # weights come from the checkpoint, never downloaded
    frozen_norm_mode='source',
    backbone=dict(
        type='MetaResNetV1c',
        partitions=5,
        meta_kernel_size=3,
        norm_cfg=norm_cfg),
    decode_head=dict(norm_cfg=norm_cfg),
    auxiliary_head=dict(norm_cfg=norm_cfg))
