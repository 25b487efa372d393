# TENT as CoTTA's table ran it (the TENT row of its Cityscapes -> ACDC
# table, on this model), SegFormer-B5, 10 rounds; tent's own TENT is
# tent_*.py.
# python tools/test_tta.py THIS_CONFIG \
#     checkpoints/segformer_mit-b5_8x1_1024x1024_160k_cityscapes_20211206_072934-87a052ec.pth
_base_ = [
    '../_base_/models/segformer_mit-b5.py',
    '../_base_/datasets/acdc_stream.py', '../_base_/tta_runtime.py',
    '../_base_/tta/tent_cotta.py'
]
