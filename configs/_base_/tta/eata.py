# EATA (Niu et al., ICML 2022), our segmentation version: a pixel is the
# sample of both filters (configs/eata/README.md).
adaptation = dict(
    method=dict(
        type='EATA',
        e0_factor=0.4,  # E0 = 0.4 ln C (Eq. 6), EATA's e_margin
        # The sample of the redundancy test (Eq. 7), chosen on the
        # held-out seed-1 stream; the paper's test is 'image'.
        redundancy='pixel',
        # epsilon of Eq. 7; None: EATA's 0.05 at 1000 classes scaled to
        # the model's (0.363 for 19), see scaled_redundancy_margin.
        redundancy_margin=None,
        average_momentum=0.1,  # EATA's update_model_probs: 0.9 / 0.1
        # None is EATA's "ETA" variant (no anti-forgetting term); make
        # one with tools/compute_fisher.py.
        fisher_file=None,
        fisher_alpha=2000.0,  # beta of Eq. 9, EATA's fisher_alpha
        # EATA uses TENT's optimizer; on Cityscapes -> ACDC the
        # baselines share CoTTA's Adam settings (lr 6e-5 / 8).
        optimizer=dict(type='Adam', lr=6e-5 / 8, betas=(0.9, 0.999))))
