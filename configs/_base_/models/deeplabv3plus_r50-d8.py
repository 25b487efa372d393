# mmseg's stock DeepLabV3+ R50-D8 (the Cityscapes model, 80.09 mIoU) on one
# device. Checkpoint: mmseg's
# deeplabv3plus_r50-d8_512x1024_80k_cityscapes_20200606_114049-f9fb496d.pth
_base_ = 'mmseg::_base_/models/deeplabv3plus_r50-d8.py'
norm_cfg = dict(type='BN', requires_grad=True)  # one device: no SyncBN
model = dict(
    pretrained=None,  # weights come from the checkpoint, never downloaded
    data_preprocessor=dict(size=None),  # test images keep their own size
    backbone=dict(norm_cfg=norm_cfg),
    decode_head=dict(norm_cfg=norm_cfg),
    auxiliary_head=dict(norm_cfg=norm_cfg))
