# EcoTTA on the embedded synthetic weather stream (tiny DeepLabV3+ R18).
# python tools/test_tta.py THIS_CONFIG data/checkpoints/CHECKPOINT.pth
_base_ = [
    '../_base_/models/deeplabv3plus_r18-tiny_meta.py',
    '../_base_/datasets/synthetic_stream.py', '../_base_/tta_runtime.py',
    '../_base_/tta/ecotta.py'
]
# How the frozen BN layers normalise while adapting (the model owns it;
# the warm-up config sets its own): see README, "EcoTTA's frozen BN layers".
model = dict(frozen_norm_mode='batch_const')
