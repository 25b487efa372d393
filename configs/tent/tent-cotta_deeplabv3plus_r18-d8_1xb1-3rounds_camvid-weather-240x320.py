# TENT as CoTTA's table ran it, on the real-image dev benchmark (CamVid
# weather stream), stock-width DeepLabV3+ R18-D8; tent's own TENT is
# tent_*.py beside it.
# python tools/test_tta.py THIS_CONFIG data/checkpoints/CHECKPOINT.pth
_base_ = [
    '../_base_/models/deeplabv3plus_r18-d8_camvid.py',
    '../_base_/datasets/camvid_weather_stream.py', '../_base_/tta_runtime.py',
    '../_base_/tta/tent_cotta.py'
]
