"""Hostile input: each bad file is a clear error naming it and the fix.

Images, labels, checkpoints and adaptation states.
"""
import os.path as osp
import struct
import zlib

import cv2
import numpy as np
import pytest
import torch
from mmcv.transforms import LoadImageFromFile
from mmseg.datasets.transforms import LoadAnnotations
from PIL import Image

from mmseg_ecotta.compat import load_local_checkpoint
from mmseg_ecotta.datasets import WeatherStreamDataset
from mmseg_ecotta.datasets.transforms import (BadImageError,
                                              LoadCheckedAnnotations,
                                              LoadCheckedImageFromFile)
from mmseg_ecotta.engine.adaptation_state import load_state
from mmseg_ecotta.evaluation import ContinualIoUMetric
from ..conftest import write_acdc


def _png(path, array) -> str:
    assert cv2.imwrite(str(path), array)
    return str(path)


def _load(path, **kwargs) -> dict:
    return LoadCheckedImageFromFile(**kwargs)(dict(img_path=str(path)))


@pytest.fixture
def good(tmp_path) -> str:
    rng = np.random.default_rng(0)
    return _png(tmp_path / 'good.png',
                rng.integers(0, 256, (32, 48, 3), dtype=np.uint8))


def test_a_good_image_loads_exactly_as_mmcv_loads_it(good, tmp_path):
    ours = _load(good)['img']
    stock = LoadImageFromFile()(dict(img_path=good))['img']
    assert ours.dtype == stock.dtype and np.array_equal(ours, stock)
    jpeg = str(tmp_path / 'good.jpg')
    assert cv2.imwrite(jpeg, cv2.imread(good))
    assert np.array_equal(
        _load(jpeg)['img'],
        LoadImageFromFile()(dict(img_path=jpeg))['img'])


def _truncated(src: str, dst, keep: float = 0.6) -> str:
    with open(src, 'rb') as f:
        data = f.read()
    with open(dst, 'wb') as f:
        f.write(data[:int(len(data) * keep)])
    return str(dst)


@pytest.mark.parametrize('kind, message', [
    ('garbage', 'is corrupt or truncated'),
    ('empty', 'is corrupt or truncated'),
    ('truncated_png', 'is corrupt or truncated'),
    ('truncated_jpeg', 'truncated JPEG'),
    ('missing', 'cannot read image'),
])
def test_corrupt_and_truncated_files_are_refused(kind, message, good,
                                                 tmp_path):
    path = tmp_path / f'{kind}.png'
    if kind == 'garbage':
        path.write_bytes(np.random.default_rng(0).bytes(500))
    elif kind == 'empty':
        path.write_bytes(b'')
    elif kind == 'truncated_png':
        _truncated(good, path)
    elif kind == 'truncated_jpeg':
        jpeg = str(tmp_path / 'full.jpg')
        ramp = np.arange(128, dtype=np.uint8)[:, None, None] * 2
        assert cv2.imwrite(jpeg, np.broadcast_to(ramp, (128, 128, 3)))
        path = tmp_path / 'cut.jpg'
        _truncated(jpeg, path, keep=0.7)
    with pytest.raises(BadImageError, match=message) as info:
        _load(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize('mode', ['L', 'RGBA', 'P', 'I;16', 'LA'])
def test_images_that_are_not_3_channel_colour_are_refused(mode, tmp_path):
    path = str(tmp_path / f'{mode.replace(";", "")}.png')
    Image.new(mode, (32, 32)).save(path)
    with pytest.raises(BadImageError, match=f"mode '{mode}'") as info:
        _load(path)
    assert path in str(info.value) and "convert('RGB')" in str(info.value)


@pytest.mark.parametrize('size, kwargs', [((1, 1), {}), ((8, 200), {}),
                                          ((64, 64), dict(max_pixels=1000))])
def test_extreme_sizes_are_refused(size, kwargs, tmp_path):
    path = _png(tmp_path / 'x.png', np.zeros(size + (3, ), np.uint8))
    with pytest.raises(BadImageError, match='outside the accepted range') \
            as info:
        _load(path, **kwargs)
    assert path in str(info.value) and 'min_size/max_pixels' in str(info.value)


def _png_header(path, width: int, height: int) -> str:
    """A PNG that declares ``width`` x ``height`` and holds no pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body).to_bytes(4, 'big')
        return len(body).to_bytes(4, 'big') + kind + body + crc

    ihdr = struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) +
                     chunk(b'IEND', b''))
    return str(path)


@pytest.mark.parametrize('side, message', [(12000, '12000x12000 pixels'),
                                           (60000, 'far too large')])
def test_a_huge_header_is_refused_before_decoding(side, message, tmp_path):
    # Decoding 12000 x 12000 x 3 would allocate 412 MiB, 60000^2 10 GiB.
    path = _png_header(tmp_path / 'huge.png', side, side)
    with pytest.raises(BadImageError, match=message) as info:
        _load(path)
    assert path in str(info.value)


def test_label_values_outside_the_classes_name_the_label_file():
    metric = ContinualIoUMetric()
    metric.dataset_meta = dict(classes=tuple('abc'))
    label = torch.tensor([[[0, 1, 255], [2, 7, 33]]])
    sample = dict(
        seg_map_path='gt/x_gt_labelTrainIds.png',
        pred_sem_seg=dict(data=torch.zeros(1, 2, 3, dtype=torch.long)),
        gt_sem_seg=dict(data=label))
    with pytest.raises(
            ValueError,
            match=r'gt/x_gt_labelTrainIds.png has '
            r'values \[7, 33\] outside the 3 classes'):
        metric.process({}, [sample])


def test_stream_naming_a_missing_folder_is_refused(tmp_path):
    root = write_acdc(str(tmp_path / 'acdc'), {'fog': 1})
    with pytest.raises(FileNotFoundError, match='symlink the dataset') \
            as info:
        WeatherStreamDataset(
            domains=['fog', 'snow'],
            rounds=1,
            dataset_template=dict(type='ACDCDataset', data_root=root))
    assert osp.join('rgb_anon', 'snow') in str(info.value)


def _load_label(path, **kwargs) -> dict:
    return LoadCheckedAnnotations(**kwargs)(
        dict(seg_map_path=str(path), reduce_zero_label=False, seg_fields=[]))


def test_a_good_label_loads_exactly_as_mmseg_loads_it(tmp_path):
    label = np.random.default_rng(0).integers(0, 19, (32, 48), np.uint8)
    path = _png(tmp_path / 'x_gt_labelTrainIds.png', label)
    stock = LoadAnnotations()(
        dict(seg_map_path=path, reduce_zero_label=False, seg_fields=[]))
    ours = _load_label(path)['gt_seg_map']
    assert np.array_equal(ours, stock['gt_seg_map'])
    assert np.array_equal(ours, label)


@pytest.mark.parametrize('kind, message', [
    ('truncated', 'is corrupt or truncated'),
    ('empty', r'is corrupt or truncated \(empty: 0 bytes\)'),
    ('text', "not an image at all \\(it starts with b'Not Found"),
    ('huge_header', '12000x12000 pixels, more than'),
    ('colour', "mode 'RGB', not a one-channel 8-bit map"),
    ('16bit', "mode 'I;16'"),
])
def test_bad_label_files_are_refused_naming_the_file(kind, message, tmp_path):
    path = tmp_path / f'{kind}_gt_labelTrainIds.png'
    if kind == 'truncated':
        full = _png(
            tmp_path / 'full.png',
            np.random.default_rng(0).integers(0, 19, (64, 64), np.uint8))
        _truncated(full, path)
    elif kind == 'empty':
        path.write_bytes(b'')
    elif kind == 'text':
        path.write_text('Not Found\n')
    elif kind == 'huge_header':
        _png_header(path, 12000, 12000)
    else:
        Image.new('RGB' if kind == 'colour' else 'I;16',
                  (32, 32)).save(str(path))
    with pytest.raises(BadImageError, match=message) as info:
        _load_label(path)
    assert f'label {path} ' in str(info.value)
    assert 're-download' in str(info.value) or 'convert' in str(
        info.value) or 'max_pixels' in str(info.value)


@pytest.mark.parametrize('kind, message', [
    ('empty', r'is empty \(0 bytes\)'),
    ('truncated', 'is truncated'),
    ('text', 'is not a PyTorch file'),
])
def test_bad_checkpoint_and_state_files_name_the_file_and_the_fix(
        kind, message, tmp_path):
    good = tmp_path / 'good.pth'
    torch.save({'state_dict': {'w': torch.zeros(1000)}}, str(good))
    path = tmp_path / f'{kind}.pth'
    if kind == 'empty':
        path.write_bytes(b'')
    elif kind == 'truncated':
        _truncated(str(good), path, keep=0.5)
    else:
        path.write_text('<html>Not Found</html>')
    with pytest.raises(ValueError, match=message) as info:
        load_local_checkpoint(str(path), 'cpu')
    assert f"checkpoint '{path}'" in str(info.value)
    assert 'download or copy it again' in str(info.value)
    with pytest.raises(ValueError, match=message) as info:
        load_state(str(path), {})
    assert f"adaptation state '{path}'" in str(info.value)
    assert 'run without --resume' in str(info.value)
