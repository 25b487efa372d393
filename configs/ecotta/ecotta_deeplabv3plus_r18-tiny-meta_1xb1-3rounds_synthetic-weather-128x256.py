# EcoTTA on the embedded synthetic weather stream (tiny DeepLabV3+ R18).
# python tools/test_tta.py THIS_CONFIG data/checkpoints/CHECKPOINT.pth
_base_ = [
    '../_base_/models/deeplabv3plus_r18-tiny_meta.py',
    '../_base_/datasets/synthetic_stream.py', '../_base_/tta_runtime.py',
    '../_base_/tta/ecotta.py'
]
# The frozen BN layers' mode while adapting: ../_base_/tta/ecotta.py.
model = dict(frozen_norm_mode=_base_.frozen_norm_mode)
