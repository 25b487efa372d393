# The synthetic warm-up on the train and the val scenes (240 instead of
# 200) with half of its crops corrupted (./*-corruptaug-*, ../_base_/datasets/
# warmup_corruptions.py): the two warm-up levers of the README's "More
# frames for the warm-up" and "Corruptions in the warm-up" together. The
# shipped warm-up, adopted by a pre-registered study at two seeds (README,
# "Both warm-up levers together").
# python tools/train.py THIS_CONFIG
_base_ = './ecotta-warmup_deeplabv3plus_r18-tiny-meta_1xb8-1500_synthetic-corruptaug-128x256.py'  # noqa: E501
# The base's dataset, corruptions included, once per split.
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ConcatDataset',
        datasets=[
            dict(
                _base_.train_dataloader.dataset,
                data_prefix=dict(
                    img_path='leftImg8bit/' + split,
                    seg_map_path='gtFine/' + split))
            for split in ('train', 'val')
        ]))
