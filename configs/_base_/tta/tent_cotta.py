# TENT as CoTTA's Cityscapes -> ACDC table ran it (Wang et al., CVPR 2022,
# their release's single_gpu_tent): stored BN statistics (model.eval()),
# norm scale and shift (BN; LayerNorm in SegFormer's encoder) trained by the
# cross-entropy to the model's own argmax, Adam lr 6e-5 / 8 built afresh for
# every domain (the recipe's default; optimizer_per_domain=False keeps
# one). Tent's own method (test-batch statistics, entropy) is
# configs/_base_/tta/tent.py.
adaptation = dict(
    method=dict(
        type='Tent',
        recipe='cotta',
        optimizer=dict(type='Adam', lr=6e-5 / 8, betas=(0.9, 0.999))))
