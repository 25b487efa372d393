# EcoTTA with the frozen network's BN layers normalising by 'batch'
# statistics (see mmseg_ecotta/models/norm.py): one of the three options
# compared to choose EcoTTA's default.
_base_ = '../ecotta_deeplabv3plus_r18-tiny-meta_1xb1-3rounds_synthetic-weather-128x256.py'  # noqa: E501
model = dict(frozen_norm_mode='batch')
