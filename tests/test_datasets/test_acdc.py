"""ACDCDataset: layout, suffixes, labels, order and its error messages."""
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from mmengine.registry import init_default_scope
from mmseg.datasets import CityscapesDataset
from mmseg.registry import DATASETS

from mmseg_ecotta.datasets import ACDCDataset
from ..conftest import write_acdc

PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]


def test_lists_condition_split_with_acdc_suffixes(acdc_root):
    dataset = ACDCDataset(condition='night', data_root=acdc_root)
    assert len(dataset) == 2
    assert dataset.metainfo['classes'] == CityscapesDataset.METAINFO['classes']
    paths = [dataset.get_data_info(i)['img_path'] for i in range(2)]
    assert paths == sorted(paths)
    for i in range(2):
        info = dataset.get_data_info(i)
        assert info['img_path'].endswith('_rgb_anon.png')
        assert osp.join('rgb_anon', 'night', 'train') in info['img_path']
        assert info['seg_map_path'] == info['img_path'].replace(
            'rgb_anon', 'gt', 1).replace('_rgb_anon.png',
                                         '_gt_labelTrainIds.png')


def test_builds_from_registry_and_loads_labels(acdc_root):
    init_default_scope('mmseg')
    dataset = DATASETS.build(
        dict(
            type='ACDCDataset',
            condition='fog',
            data_root=acdc_root,
            pipeline=PIPELINE))
    sample = dataset[1]
    info = dataset.get_data_info(1)
    label = cv2.imread(info['seg_map_path'], cv2.IMREAD_UNCHANGED)
    seg = sample['data_samples'].gt_sem_seg.data.numpy()[0]
    np.testing.assert_array_equal(seg, label)
    assert sample['inputs'].shape[-2:] == label.shape


def test_other_split_and_extra_condition_folder(tmp_path):
    root = write_acdc(str(tmp_path), {'clear': 3}, split='val')
    assert len(ACDCDataset(condition='clear', split='val',
                           data_root=root)) == 3


def test_missing_condition_folder(tmp_path):
    root = write_acdc(str(tmp_path), {'fog': 1})
    with pytest.raises(FileNotFoundError, match=r"snow.*\['fog'\]"):
        ACDCDataset(condition='snow', data_root=root)


def test_unknown_condition_lists_valid_ones(acdc_root):
    with pytest.raises(ValueError, match=r"'sandstorm'.*'fog'.*'snow'"):
        ACDCDataset(condition='sandstorm', data_root=acdc_root)


def test_missing_split_lists_splits_on_disk(acdc_root):
    with pytest.raises(FileNotFoundError, match=r"'val'.*\['train'\]"):
        ACDCDataset(condition='fog', split='val', data_root=acdc_root)


def test_image_without_label_names_both_paths(acdc_root):
    dataset = ACDCDataset(condition='rain', data_root=acdc_root)
    info = dataset.get_data_info(0)
    os.remove(info['seg_map_path'])
    with pytest.raises(FileNotFoundError) as error:
        ACDCDataset(condition='rain', data_root=acdc_root)
    assert info['img_path'] in str(error.value)
    assert info['seg_map_path'] in str(error.value)


def test_empty_split(tmp_path):
    os.makedirs(tmp_path / 'rgb_anon' / 'fog' / 'train' / 'GOPR0000')
    with pytest.raises(ValueError, match='no \\*_rgb_anon.png images'):
        ACDCDataset(condition='fog', data_root=str(tmp_path))


def test_lazy_init_defers_the_checks(tmp_path):
    dataset = ACDCDataset(
        condition='fog', data_root=str(tmp_path), lazy_init=True)
    with pytest.raises(FileNotFoundError):
        dataset.full_init()


def test_data_prefix_is_rejected(acdc_root):
    with pytest.raises(TypeError, match='data_prefix'):
        ACDCDataset(condition='fog', data_root=acdc_root, data_prefix=dict())
