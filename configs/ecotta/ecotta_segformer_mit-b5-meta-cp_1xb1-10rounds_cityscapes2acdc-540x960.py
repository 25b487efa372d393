# EcoTTA on SegFormer-B5 with the least memory: every transformer block on
# the gradient path keeps only its input for backward and recomputes its
# forward there (mmseg's with_cp, exact gradients, one more forward of
# MiT stages 2-4 per step). Same checkpoint as the default config.
# python tools/test_tta.py THIS_CONFIG CHECKPOINT
_base_ = [
    './ecotta_segformer_mit-b5-meta_1xb1-10rounds_cityscapes2acdc-540x960.py'
]
model = dict(backbone=dict(with_cp=True))
