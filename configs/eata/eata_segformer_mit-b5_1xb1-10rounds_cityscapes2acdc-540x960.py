# EATA, SegFormer-B5, Cityscapes -> ACDC (CoTTA's protocol and model, 10
# rounds), our segmentation version; its Fisher covers the parameters it
# adapts (the encoder's LayerNorms, the head's BN), on the 500 clean
# Cityscapes val images. CHECKPOINT: mmseg's released Cityscapes SegFormer-B5,
#     checkpoints/segformer_mit-b5_8x1_1024x1024_160k_cityscapes_20211206_072934-87a052ec.pth
# python tools/compute_fisher.py THIS_CONFIG CHECKPOINT \
#     --out data/checkpoints/fisher_segformer_mit-b5_cityscapes.pth
# python tools/test_tta.py THIS_CONFIG CHECKPOINT
_base_ = [
    '../_base_/models/segformer_mit-b5.py',
    '../_base_/datasets/acdc_stream.py', '../_base_/tta_runtime.py',
    '../_base_/tta/eata.py'
]
# The inherited method with one key changed (dicts merge recursively).
adaptation = dict(
    method=dict(fisher_file='data/checkpoints/'
                'fisher_segformer_mit-b5_cityscapes.pth'))
