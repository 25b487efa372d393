# CoTTA (Wang et al., CVPR 2022) with the authors' Cityscapes -> ACDC
# settings. recipe='segmentation': stored BN statistics in student, teacher
# and anchor, hard pseudo-labels at input resolution; 'cifar': their
# CIFAR code (test-batch statistics, soft pseudo-labels). The segmentation
# recipe builds a fresh Adam at every domain boundary, as the release does
# (optimizer_per_domain=False keeps one for the whole stream; the CIFAR
# recipe keeps one by default).
adaptation = dict(
    method=dict(
        type='CoTTA',
        recipe='segmentation',
        trainable='all',
        ema_momentum=0.999,  # teacher EMA alpha (Eq. 2)
        # ap of Eq. 4, CoTTA's segmentation setting (the 5% quantile of
        # the source model's confidence on Cityscapes was 0.74).
        anchor_threshold=0.69,
        restore_prob=0.01,  # stochastic restore p (Eq. 5-6)
        # Multi-scale + flip test-time augmentation: 7 x 2 = 14 views.
        aug_scales=(0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0),
        aug_flip=True,
        optimizer=dict(type='Adam', lr=6e-5 / 8, betas=(0.9, 0.999))))
