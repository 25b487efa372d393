# EcoTTA with the frozen network's BN layers normalising by 'batch'
# statistics (see mmseg_ecotta/models/norm.py): one of the three options
# compared to choose EcoTTA's default.
_base_ = './ecotta_deeplabv3plus_r18-tiny_meta_synthetic-stream.py'
model = dict(frozen_norm_mode='batch')
