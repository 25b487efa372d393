# The tiny DeepLabV3+ R18 of the real-image dev benchmark (CamVid frames at
# 240x320): ASPP rates scaled to its 30x40 feature map.
_base_ = './deeplabv3plus_r18-tiny.py'
model = dict(
    data_preprocessor=dict(size=(192, 256)),  # training crops
    decode_head=dict(dilations=(1, 4, 8, 12)))
