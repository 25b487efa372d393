"""WeatherStreamDataset: order, rounds, tags, metainfo, loader and errors."""
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import DefaultSampler, pseudo_collate
from mmengine.registry import init_default_scope
from mmseg.datasets import CityscapesDataset
from mmseg.registry import DATASETS

from mmseg_ecotta.datasets import (COTTA_DOMAINS, COTTA_ROUNDS,
                                   WeatherStreamDataset)
from ..conftest import REPO, write_acdc

PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(64, 32), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]


@pytest.fixture
def uneven_root(tmp_path) -> str:
    """ACDC layout with 3 fog, 1 night, 2 rain and 2 snow images."""
    return write_acdc(
        str(tmp_path / 'acdc'), {
            'fog': 3,
            'night': 1,
            'rain': 2,
            'snow': 2
        })


def build_stream(root: str, rounds: int = 2, **kwargs):
    init_default_scope('mmseg')
    return DATASETS.build(
        dict(
            type='WeatherStreamDataset',
            domains=list(COTTA_DOMAINS),
            rounds=rounds,
            dataset_template=dict(
                type='ACDCDataset', data_root=root, pipeline=PIPELINE),
            **kwargs))


def expected_order(root: str, rounds: int):
    """(domain, round, image path) in CoTTA's order, from the disk."""
    order = []
    for round_idx in range(rounds):
        for cond in COTTA_DOMAINS:
            folder = osp.join(root, 'rgb_anon', cond, 'train')
            images = sorted(
                osp.join(d, f) for d, _, fs in os.walk(folder) for f in fs)
            order += [(cond, round_idx, p) for p in images]
    return order


def test_defaults_are_cottas_protocol():
    assert COTTA_DOMAINS == ('fog', 'night', 'rain', 'snow')
    assert COTTA_ROUNDS == 10


def test_order_rounds_and_tags_on_loaded_samples(uneven_root):
    stream = build_stream(uneven_root, rounds=2)
    expected = expected_order(uneven_root, rounds=2)
    assert len(stream) == len(expected) == 16
    for index, (cond, round_idx, path) in enumerate(expected):
        sample = stream[index]
        meta = sample['data_samples'].metainfo
        assert meta['img_path'] == path
        assert meta['domain'] == cond
        assert meta['round'] == round_idx
        assert meta['domain_index'] == COTTA_DOMAINS.index(cond)
        assert meta['stream_index'] == index
        # The label went through the pipeline untouched.
        label = cv2.imread(meta['seg_map_path'], cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(
            sample['data_samples'].gt_sem_seg.data.numpy()[0], label)
    assert stream.locate(-1) == (1, 3, 1)
    with pytest.raises(IndexError):
        stream.locate(16)


def test_segments_cover_the_stream(uneven_root):
    stream = build_stream(uneven_root, rounds=2)
    segments = stream.segments()
    assert [(s.round, s.domain) for s in segments] == [(r, d) for r in range(2)
                                                       for d in COTTA_DOMAINS]
    spans = [(s.start, s.stop) for s in segments[:4]]
    assert spans == [(0, 3), (3, 4), (4, 6), (6, 8)]
    assert segments[-1].stop == len(stream)
    for seg in segments:
        for index in range(seg.start, seg.stop):
            info = stream.stream_info(index)
            assert (info['round'], info['domain']) == (seg.round, seg.domain)


def test_metainfo_has_classes_domains_and_rounds(uneven_root):
    meta = build_stream(uneven_root, rounds=3).metainfo
    assert meta['classes'] == CityscapesDataset.METAINFO['classes']
    assert len(meta['palette']) == 19
    assert meta['domains'] == COTTA_DOMAINS
    assert meta['rounds'] == 3


def test_domains_are_built_once(uneven_root):
    stream = build_stream(uneven_root, rounds=4)
    assert len(stream.datasets) == 4
    a, b = stream[0], stream[stream.round_length]
    assert a['data_samples'].img_path == b['data_samples'].img_path
    assert (a['data_samples'].round, b['data_samples'].round) == (0, 1)


def test_explicit_domain_dicts_and_built_datasets(uneven_root):
    init_default_scope('mmseg')
    night = DATASETS.build(
        dict(
            type='ACDCDataset',
            condition='night',
            data_root=uneven_root,
            pipeline=PIPELINE))
    stream = WeatherStreamDataset(
        domains=[
            dict(
                name='foggy',
                dataset=dict(
                    type='ACDCDataset',
                    condition='fog',
                    data_root=uneven_root,
                    pipeline=PIPELINE)),
            dict(name='dark', dataset=night)
        ],
        rounds=1)
    assert len(stream) == 4
    assert [stream[i]['data_samples'].domain
            for i in range(4)] == ['foggy'] * 3 + ['dark']


def test_lazy_init_defers_disk_access(tmp_path):
    stream = build_stream(str(tmp_path / 'missing'), lazy_init=True)
    with pytest.raises(FileNotFoundError, match='fog'):
        stream.full_init()


def test_pipeline_without_data_samples_gets_tags_in_dict(uneven_root):
    init_default_scope('mmseg')
    stream = WeatherStreamDataset(
        domains=['rain'],
        rounds=2,
        dataset_template=dict(type='ACDCDataset', data_root=uneven_root))
    item = stream[3]
    assert (item['domain'], item['round'], item['stream_index']) == ('rain', 1,
                                                                     3)
    assert stream.get_data_info(3)['img_path'] == item['img_path']


@pytest.mark.parametrize('kwargs, match', [
    (dict(rounds=0), 'rounds'),
    (dict(domains=[]), 'non-empty'),
    (dict(domains=['fog'], dataset_template=None), 'dataset_template'),
    (dict(domains=[dict(dataset=dict())]), 'name'),
])
def test_empty_or_malformed_stream(uneven_root, kwargs, match):
    cfg = dict(
        domains=['fog'],
        dataset_template=dict(type='ACDCDataset', data_root=uneven_root))
    cfg.update(kwargs)
    init_default_scope('mmseg')
    with pytest.raises(ValueError, match=match):
        WeatherStreamDataset(**cfg)


def test_domain_without_samples(tmp_path, uneven_root):
    init_default_scope('mmseg')
    empty = DATASETS.build(
        dict(
            type='CityscapesDataset',
            data_root=str(tmp_path),
            data_prefix=dict(img_path='.', seg_map_path='.'),
            serialize_data=False,  # mmengine cannot serialize no samples
            lazy_init=True))
    with pytest.raises(ValueError, match=r"\['clear'\] have no samples"):
        WeatherStreamDataset(
            domains=[dict(name='clear', dataset=empty)], rounds=1)


def test_unknown_domain_name_from_acdc(uneven_root):
    with pytest.raises(ValueError, match="'hail'"):
        WeatherStreamDataset(
            domains=['fog', 'hail'],
            dataset_template=dict(type='ACDCDataset', data_root=uneven_root))


def test_mmengine_dataloader_batch_size_one(uneven_root):
    stream = build_stream(uneven_root, rounds=2)
    loader = torch.utils.data.DataLoader(
        stream,
        batch_size=1,
        sampler=DefaultSampler(stream, shuffle=False),
        collate_fn=pseudo_collate,
        num_workers=0)
    seen = []
    for batch in loader:
        assert len(batch['inputs']) == 1
        sample = batch['data_samples'][0]
        seen.append((sample.round, sample.domain, sample.stream_index))
    assert seen == [(i.round, i.domain, i.start + k)
                    for i in stream.segments()
                    for k in range(i.stop - i.start)]


def test_runner_builds_the_acdc_stream_config(uneven_root):
    from mmengine.runner import Runner
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/_base_/datasets/acdc_stream.py'))
    dataset = cfg.test_dataloader.dataset
    assert dataset.domains == list(COTTA_DOMAINS)
    assert dataset.rounds == COTTA_ROUNDS
    dataset.dataset_template.data_root = uneven_root
    cfg.test_dataloader.update(num_workers=0, persistent_workers=False)
    init_default_scope('mmseg')
    loader = Runner.build_dataloader(cfg.test_dataloader)
    assert len(loader) == 10 * 8
    batch = next(iter(loader))
    assert batch['data_samples'][0].domain == 'fog'
    # The model input is 960x540-bounded, the label keeps full size.
    assert batch['data_samples'][0].gt_sem_seg.shape == (64, 128)


def test_a_repeated_domain_name_is_refused(uneven_root):
    # It merged into the first fog's results (issue 27).
    init_default_scope('mmseg')
    with pytest.raises(ValueError, match=r"name \['fog'\] more than once"):
        WeatherStreamDataset(
            domains=['fog', 'night', 'fog'],
            dataset_template=dict(type='ACDCDataset', data_root=uneven_root))


def test_a_folder_named_like_an_image_is_an_error(uneven_root):
    folder = osp.join(uneven_root, 'rgb_anon', 'night', 'train', 'GOPR0000',
                      'GOPR0000_frame_000009_rgb_anon.png')
    os.makedirs(folder)
    with pytest.raises(ValueError, match='not a file') as info:
        build_stream(uneven_root, lazy_init=False)
    assert folder in str(info.value)
