# Tent on the real-image dev benchmark (CamVid weather stream), SegFormer-B0
# (MiT encoder with LayerNorm, BN in the head).
# python tools/test_tta.py THIS_CONFIG \
#     data/checkpoints/segformer_mit-b0_camvid-source.pth
_base_ = [
    '../_base_/models/segformer_mit-b0_camvid.py',
    '../_base_/datasets/camvid_weather_stream.py', '../_base_/tta_runtime.py',
    '../_base_/tta/tent.py'
]
