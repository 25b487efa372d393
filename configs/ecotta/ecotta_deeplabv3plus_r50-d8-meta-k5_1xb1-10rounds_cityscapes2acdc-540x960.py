# EcoTTA, DeepLabV3+ R50-D8, Cityscapes -> ACDC (CoTTA protocol, 10 rounds).
# python tools/test_tta.py THIS_CONFIG CHECKPOINT
_base_ = [
    '../_base_/models/deeplabv3plus_r50-d8_meta-k5.py',
    '../_base_/datasets/acdc_stream.py', '../_base_/tta_runtime.py',
    '../_base_/tta/ecotta.py'
]
# The checkpoint: the one the R50 warm-up config of this folder trains
# (ecotta-warmup_deeplabv3plus_r50-d8-meta-k5_1xb2-6k_cityscapes-512x1024).
# The frozen BN layers' mode while adapting: ../_base_/tta/ecotta.py.
model = dict(frozen_norm_mode=_base_.frozen_norm_mode)
