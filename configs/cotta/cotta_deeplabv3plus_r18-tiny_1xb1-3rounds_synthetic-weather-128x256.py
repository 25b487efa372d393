# CoTTA on the embedded synthetic weather stream (tiny DeepLabV3+ R18), with
# the authors' segmentation recipe (stored BN statistics in student, teacher
# and anchor; hard pseudo-labels at input resolution). Their CIFAR recipe:
# --cfg-options adaptation.method.recipe=cifar
# python tools/test_tta.py THIS_CONFIG data/checkpoints/CHECKPOINT.pth
_base_ = [
    '../_base_/models/deeplabv3plus_r18-tiny.py',
    '../_base_/datasets/synthetic_stream.py', '../_base_/tta_runtime.py',
    '../_base_/tta/cotta.py'
]
