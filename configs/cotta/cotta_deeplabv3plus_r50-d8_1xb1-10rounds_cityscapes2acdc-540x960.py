# CoTTA, DeepLabV3+ R50-D8, Cityscapes -> ACDC (CoTTA protocol, 10 rounds),
# the authors' segmentation recipe (stored BN statistics in all three
# networks, hard pseudo-labels at input resolution); their CIFAR recipe:
# --cfg-options adaptation.method.recipe=cifar
# 14 teacher views + anchor + student per image: expect ~16 forwards and
# 3 copies of the network. A shorter stream:
# --cfg-options test_dataloader.dataset.rounds=3
# python tools/test_tta.py THIS_CONFIG CHECKPOINT
_base_ = [
    '../_base_/models/deeplabv3plus_r50-d8.py',
    '../_base_/datasets/acdc_stream.py', '../_base_/tta_runtime.py',
    '../_base_/tta/cotta.py'
]
