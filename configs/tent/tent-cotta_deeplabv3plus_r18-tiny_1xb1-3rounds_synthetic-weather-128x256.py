# TENT as CoTTA's table ran it, on the embedded synthetic weather stream
# (tiny DeepLabV3+ R18); tent's own TENT is tent_*.py beside it.
# python tools/test_tta.py THIS_CONFIG data/checkpoints/CHECKPOINT.pth
_base_ = [
    '../_base_/models/deeplabv3plus_r18-tiny.py',
    '../_base_/datasets/synthetic_stream.py', '../_base_/tta_runtime.py',
    '../_base_/tta/tent_cotta.py'
]
