# EcoTTA on the embedded synthetic weather stream (tiny DeepLabV3+ R18).
# python tools/test_tta.py THIS_CONFIG data/checkpoints/CHECKPOINT.pth
_base_ = [
    '../_base_/models/deeplabv3plus_r18-tiny_meta.py',
    '../_base_/datasets/synthetic_stream.py', '../_base_/tta_runtime.py',
    '../_base_/tta/ecotta.py'
]
# The frozen BN layers normalise by the test image's statistics, held
# constant in the backward (the meta model warmed up on each image's
# statistics, 'sample'): see README, "EcoTTA's BN layers".
model = dict(frozen_norm_mode='batch_const')
