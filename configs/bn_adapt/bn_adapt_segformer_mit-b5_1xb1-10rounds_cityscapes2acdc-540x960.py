# BNAdapt, SegFormer-B5, Cityscapes -> ACDC (CoTTA's protocol and model,
# 10 rounds). Only the head's 5 BN layers have statistics to replace; the
# MiT encoder's LayerNorms store none and stay as trained (the run says so).
# python tools/test_tta.py THIS_CONFIG \
#     checkpoints/segformer_mit-b5_8x1_1024x1024_160k_cityscapes_20211206_072934-87a052ec.pth
_base_ = [
    '../_base_/models/segformer_mit-b5.py',
    '../_base_/datasets/acdc_stream.py', '../_base_/tta_runtime.py',
    '../_base_/tta/bn_adapt.py'
]
