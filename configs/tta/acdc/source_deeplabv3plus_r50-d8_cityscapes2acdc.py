# Source, DeepLabV3+ R50-D8, Cityscapes -> ACDC (CoTTA protocol, 10 rounds).
# python tools/test_tta.py THIS_CONFIG CHECKPOINT
_base_ = '../_base_/deeplabv3plus_r50-d8_cityscapes2acdc.py'
custom_hooks = [
    dict(type='TestTimeAdaptationHook', method=dict(type='Source'))
]
