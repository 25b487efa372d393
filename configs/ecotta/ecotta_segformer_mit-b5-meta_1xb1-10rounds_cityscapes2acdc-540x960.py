# EcoTTA, SegFormer-B5 (CoTTA's model), Cityscapes -> ACDC (CoTTA protocol,
# 10 rounds), a meta network per MiT stage.
# python tools/test_tta.py THIS_CONFIG CHECKPOINT
_base_ = [
    '../_base_/models/segformer_mit-b5_meta.py',
    '../_base_/datasets/acdc_stream.py', '../_base_/tta_runtime.py',
    '../_base_/tta/ecotta.py'
]
# The checkpoint: the one the B5 warm-up config of this folder trains
# (ecotta-warmup_segformer_mit-b5-meta_1xb2-6k_cityscapes-1024x1024).
# The frozen BN layers' mode while adapting: ../_base_/tta/ecotta.py.
model = dict(frozen_norm_mode=_base_.frozen_norm_mode)
