# EATA, DeepLabV3+ R50-D8, Cityscapes -> ACDC (CoTTA protocol, 10 rounds),
# our segmentation version (pixel-level redundancy, margin scaled to 19
# classes). The Fisher file: EATA's estimator (squared gradients of batches
# of 64) on the 500 clean Cityscapes val images:
# python tools/compute_fisher.py THIS_CONFIG CHECKPOINT
#     --out data/checkpoints/fisher_deeplabv3plus_r50-d8_cityscapes.pth
# python tools/test_tta.py THIS_CONFIG CHECKPOINT
_base_ = [
    '../_base_/models/deeplabv3plus_r50-d8.py',
    '../_base_/datasets/acdc_stream.py', '../_base_/tta_runtime.py',
    '../_base_/tta/eata.py'
]
# The inherited method with one key changed (dicts merge recursively).
adaptation = dict(
    method=dict(fisher_file='data/checkpoints/'
                'fisher_deeplabv3plus_r50-d8_cityscapes.pth'))
