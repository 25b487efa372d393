# K=4 partitions [3, 3, 5, 5] (the paper's smaller meta-network budget).
_base_ = './deeplabv3plus_r50-d8_meta-k5.py'
model = dict(backbone=dict(partitions=4))
