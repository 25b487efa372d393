# TENT (Wang et al., ICLR 2021): entropy minimisation of the norm layers'
# scale and shift (BN; LayerNorm and GroupNorm where the model has them,
# e.g. SegFormer's encoder). CoTTA's Cityscapes -> ACDC protocol runs its
# baselines with CoTTA's Adam settings (lr 6e-5 / 8 for batch size 1);
# TENT's own paper has no segmentation-at-batch-1 setting.
adaptation = dict(
    method=dict(
        type='Tent',
        optimizer=dict(type='Adam', lr=6e-5 / 8, betas=(0.9, 0.999))))
