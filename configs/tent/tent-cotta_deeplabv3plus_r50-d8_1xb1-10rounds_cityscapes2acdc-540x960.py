# TENT as CoTTA's table ran it (the TENT row of its Cityscapes -> ACDC
# table), DeepLabV3+ R50-D8, 10 rounds; tent's own TENT is tent_*.py.
# python tools/test_tta.py THIS_CONFIG CHECKPOINT
_base_ = [
    '../_base_/models/deeplabv3plus_r50-d8.py',
    '../_base_/datasets/acdc_stream.py', '../_base_/tta_runtime.py',
    '../_base_/tta/tent_cotta.py'
]
