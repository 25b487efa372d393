# Source, DeepLabV3+ R50-D8, Cityscapes -> ACDC (CoTTA protocol, 10 rounds).
# python tools/test_tta.py THIS_CONFIG CHECKPOINT
_base_ = [
    '../_base_/models/deeplabv3plus_r50-d8.py',
    '../_base_/datasets/acdc_stream.py', '../_base_/tta_runtime.py',
    '../_base_/tta/source.py'
]
