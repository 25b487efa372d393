# EcoTTA on the real-image dev benchmark (CamVid weather stream).
# python tools/test_tta.py THIS_CONFIG data/checkpoints/CHECKPOINT.pth
_base_ = [
    '../_base_/models/deeplabv3plus_r18-tiny_camvid_meta.py',
    '../_base_/datasets/camvid_weather_stream.py', '../_base_/tta_runtime.py',
    '../_base_/tta/ecotta.py'
]
# The frozen BN layers' mode while adapting: ../_base_/tta/ecotta.py.
model = dict(frozen_norm_mode=_base_.frozen_norm_mode)
