# The CamVid warm-up on the train and the val frames (468 instead of 367) with
# half of its crops corrupted (../_base_/datasets/
# warmup_corruptions.py): the two warm-up levers of the README's "More
# frames for the warm-up" and "Corruptions in the warm-up" together. The
# shipped warm-up, adopted by a pre-registered study at two seeds (README,
# "Both warm-up levers together").
# python tools/train.py THIS_CONFIG
_base_ = [
    './ecotta-warmup_deeplabv3plus_r18-tiny-meta_1xb8-1200_camvid-trainval-240x320.py',  # noqa: E501
    '../_base_/datasets/warmup_corruptions.py'
]
# The base's pipeline with the corruptions before its photometric
# distortion, in each split's dataset.
train_pipeline = _base_.train_pipeline
train_pipeline.insert(-2, _base_.corruption_aug)
train_dataloader = dict(
    dataset=dict(datasets=[
        dict(dataset, pipeline=train_pipeline)
        for dataset in _base_.train_dataloader.dataset.datasets
    ]))
