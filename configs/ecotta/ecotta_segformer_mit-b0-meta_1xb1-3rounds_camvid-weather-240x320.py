# EcoTTA on the real-image dev benchmark (CamVid weather stream), SegFormer-B0
# with a meta network per MiT stage.
# python tools/test_tta.py THIS_CONFIG data/checkpoints/CHECKPOINT.pth
_base_ = [
    '../_base_/models/segformer_mit-b0_camvid_meta.py',
    '../_base_/datasets/camvid_weather_stream.py', '../_base_/tta_runtime.py',
    '../_base_/tta/ecotta.py'
]
# The frozen BN layers' mode while adapting: ../_base_/tta/ecotta.py.
model = dict(frozen_norm_mode=_base_.frozen_norm_mode)
