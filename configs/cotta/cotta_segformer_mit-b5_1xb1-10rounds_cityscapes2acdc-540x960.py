# CoTTA, SegFormer-B5, Cityscapes -> ACDC: the authors' model and
# segmentation recipe (every parameter trains; stored statistics in the
# head's BN layers of all three networks; hard pseudo-labels at input
# resolution), 10 rounds. 14 teacher views + anchor + student per image and
# 3 copies of an 82 M-parameter network. A shorter stream:
# --cfg-options test_dataloader.dataset.rounds=3
# python tools/test_tta.py THIS_CONFIG \
#     checkpoints/segformer_mit-b5_8x1_1024x1024_160k_cityscapes_20211206_072934-87a052ec.pth
_base_ = [
    '../_base_/models/segformer_mit-b5.py',
    '../_base_/datasets/acdc_stream.py', '../_base_/tta_runtime.py',
    '../_base_/tta/cotta.py'
]
