"""CamVid conversion, checksums and the ACDC-layout weather stream."""
import glob
import os
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS

from mmseg_ecotta.datasets.camvid import (CAMVID_TO_CITYSCAPES,
                                          camvid_label_to_train_ids,
                                          check_checksums, convert_camvid,
                                          dev_part, dev_part_stems,
                                          read_checksum_list, stream_frames,
                                          write_checksum_list)
from mmseg_ecotta.datasets.corrupted_stream import write_corrupted_stream
from ..conftest import REPO

SPLIT_STEMS = dict(
    train=['0006R0_f00930', '0016E5_00390'],
    val=['0016E5_07959', '0016E5_07961', '0016E5_07963'],
    test=[
        '0001TP_008550', 'Seq05VD_f00000', 'Seq05VD_f00030', 'Seq05VD_f00060',
        'Seq05VD_f00090'
    ])


@pytest.fixture
def camvid(tmp_path) -> str:
    """A CamVid folder in the SegNet tutorial's exact layout (32x48)."""
    rng = np.random.default_rng(0)
    src = tmp_path / 'CamVid'
    for split, stems in SPLIT_STEMS.items():
        os.makedirs(src / split)
        os.makedirs(src / f'{split}annot')
        for stem in stems:
            cv2.imwrite(
                str(src / split / f'{stem}.png'),
                rng.integers(0, 256, (32, 48, 3), dtype=np.uint8))
            cv2.imwrite(
                str(src / f'{split}annot' / f'{stem}.png'),
                rng.integers(0, 12, (32, 48), dtype=np.uint8))
    return str(src)


def test_labels_map_to_cityscapes_train_ids():
    label = np.arange(12, dtype=np.uint8).reshape(3, 4)
    out = camvid_label_to_train_ids(label)
    assert out.tolist() == [[10, 2, 5, 0], [1, 8, 7, 4], [13, 11, 12, 255]]
    assert sorted(CAMVID_TO_CITYSCAPES) == list(range(12))
    with pytest.raises(ValueError, match=r'x\.png: label values \[12, 40\]'):
        camvid_label_to_train_ids(np.array([[3, 12, 40]], np.uint8), 'x.png')


def test_conversion_writes_cityscapes_layout_that_mmseg_reads(
        camvid, tmp_path):
    out = str(tmp_path / 'camvid')
    files = convert_camvid(camvid, out)
    assert len(files) == 2 * sum(map(len, SPLIT_STEMS.values()))
    assert osp.isfile(
        osp.join(out, 'leftImg8bit/test/Seq05VD/'
                 'Seq05VD_f00030_leftImg8bit.png'))
    raw = cv2.imread(
        osp.join(camvid, 'valannot', '0016E5_07959.png'), cv2.IMREAD_UNCHANGED)
    converted = cv2.imread(
        osp.join(out, 'gtFine/val/0016E5/'
                 '0016E5_07959_gtFine_labelTrainIds.png'),
        cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(converted, camvid_label_to_train_ids(raw))
    init_default_scope('mmseg')
    dataset = DATASETS.build(
        dict(
            type='CityscapesDataset',
            data_root=out,
            data_prefix=dict(
                img_path='leftImg8bit/test', seg_map_path='gtFine/test'),
            pipeline=[]))
    assert len(dataset) == len(SPLIT_STEMS['test'])


def test_checksums_catch_a_changed_or_missing_file(camvid, tmp_path):
    out = str(tmp_path / 'camvid')
    files = convert_camvid(camvid, out)
    sums = str(tmp_path / 'sums')
    write_checksum_list(out, files, sums)
    expected = read_checksum_list(sums)
    assert check_checksums(out, expected) == []
    changed = osp.join(out, files[0])
    cv2.imwrite(changed, 255 - cv2.imread(changed, cv2.IMREAD_UNCHANGED))
    os.remove(osp.join(out, files[1]))
    assert check_checksums(out, expected) == sorted(files[:2])


def test_shipped_checksum_list_covers_every_frame():
    sums = read_checksum_list(osp.join(REPO, 'data', 'camvid.sha256'))
    images = [p for p in sums if p.startswith('leftImg8bit/')]
    assert len(sums) == 2 * len(images) == 2 * (367 + 101 + 233)


def test_missing_split_names_the_folder(camvid, tmp_path):
    os.rename(osp.join(camvid, 'valannot'), osp.join(camvid, 'va'))
    with pytest.raises(FileNotFoundError, match='valannot does not exist'):
        convert_camvid(camvid, str(tmp_path / 'out'))


def test_weather_stream_deals_own_frames_to_each_condition(camvid, tmp_path):
    city = str(tmp_path / 'camvid')
    convert_camvid(camvid, city)
    out = str(tmp_path / 'stream')
    counts = write_corrupted_stream(city, 'test', out, severity=3)
    assert counts == dict(fog=2, night=1, rain=1, snow=1)
    init_default_scope('mmseg')
    seen = []
    for condition in counts:
        dataset = DATASETS.build(
            dict(
                type='ACDCDataset',
                condition=condition,
                split='test',
                data_root=out,
                pipeline=[]))
        seen += [osp.basename(d['img_path']) for d in dataset]
        assert len(dataset) == counts[condition]
    assert len(set(seen)) == len(SPLIT_STEMS['test'])  # no frame twice
    # Corrupted images, untouched labels.
    stem = 'Seq05VD_f00000'
    img = cv2.imread(
        osp.join(out, f'rgb_anon/night/test/Seq05VD/{stem}_rgb_anon.png'))
    clear = cv2.imread(
        osp.join(city, f'leftImg8bit/test/Seq05VD/{stem}_leftImg8bit.png'))
    assert img.shape == clear.shape and img.mean() < clear.mean()
    label = osp.join(out, f'gt/night/test/Seq05VD/{stem}_gt_labelTrainIds.png')
    np.testing.assert_array_equal(
        cv2.imread(label, cv2.IMREAD_UNCHANGED),
        cv2.imread(
            osp.join(
                city, f'gtFine/test/Seq05VD/'
                f'{stem}_gtFine_labelTrainIds.png'), cv2.IMREAD_UNCHANGED))


def test_dev_parts_split_test_frames_by_sequence_half():
    stems = [f'Seq05VD_f{i * 30:05d}' for i in range(5)] + ['0001TP_008550']
    select, report = dev_part(stems, 'select'), dev_part(stems, 'report')
    # Seq05VD (no train frames) chooses with its first half in time
    assert select == ['Seq05VD_f00000', 'Seq05VD_f00030', 'Seq05VD_f00060']
    assert report == ['0001TP_008550', 'Seq05VD_f00090', 'Seq05VD_f00120']
    with pytest.raises(ValueError, match="'train'.*'select', 'report'"):
        dev_part(stems, 'train')


def test_weather_stream_of_a_dev_part_has_only_its_frames(camvid, tmp_path):
    city = str(tmp_path / 'camvid')
    convert_camvid(camvid, city)
    out = str(tmp_path / 'stream')
    stems = dev_part_stems(city, 'report')
    assert stems == ['0001TP_008550', 'Seq05VD_f00060', 'Seq05VD_f00090']
    assert stream_frames(city, 'report') == dict(
        split='test', out_split='report', stems=stems)
    assert stream_frames(city, 'val') == dict(
        split='val', out_split='val', stems=None)
    counts = write_corrupted_stream(
        city, out=out, severity=3, **stream_frames(city, 'report'))
    assert sum(counts.values()) == 3
    written = sorted(
        osp.basename(p)[:-len('_rgb_anon.png')]
        for p in glob.glob(osp.join(out, 'rgb_anon/*/report/*/*.png')))
    assert written == stems
    with pytest.raises(FileNotFoundError, match="1 frames.*'nope'"):
        write_corrupted_stream(city, 'test', out, 3, stems=['nope'])


def test_weather_stream_tool_writes_a_held_out_family(camvid, tmp_path):
    city = str(tmp_path / 'camvid')
    convert_camvid(camvid, city)
    out = str(tmp_path / 'heldout')
    tool = [sys.executable, 'tools/make_weather_stream.py', city]
    result = subprocess.run(
        tool + [
            '--split', 'report', '--out', out, '--conditions', 'frost=frost',
            'spatter=spatter'
        ],
        cwd=REPO,
        capture_output=True,
        text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(os.listdir(osp.join(out,
                                      'rgb_anon'))) == ['frost', 'spatter']
    bad = subprocess.run(
        tool + ['--out', out, '--conditions', 'frost'],
        cwd=REPO,
        capture_output=True,
        text=True)
    assert bad.returncode == 2
    assert "--conditions ['frost']: write each as FOLDER=CORRUPTION" in \
        bad.stderr
