"""Tests of the on-disk synthetic stream (layouts, determinism)."""

import json
import os
import os.path as osp
import re
import sys

import cv2
import numpy as np
import pytest

from mmseg_ecotta.synthetic import (CONDITIONS, SEQUENCES,
                                    generate_synthetic_stream)

H, W = 64, 128
KW = dict(num_train=3, num_val=2, num_per_condition=4, height=H, width=W)


def _files(root: str) -> dict:
    out = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = osp.join(dirpath, name)
            with open(path, 'rb') as f:
                out[osp.relpath(path, root)] = f.read()
    return out


@pytest.fixture(scope='module')
def stream(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('stream'))
    manifest = generate_synthetic_stream(root, seed=0, **KW)
    return root, manifest


def test_cityscapes_layout(stream) -> None:
    root, _ = stream
    for split, city, num in (('train', 'synthcity', 3), ('val', 'synthvalcity',
                                                         2)):
        img_dir = osp.join(root, 'cityscapes', 'leftImg8bit', split, city)
        gt_dir = osp.join(root, 'cityscapes', 'gtFine', split, city)
        imgs = sorted(os.listdir(img_dir))
        gts = sorted(os.listdir(gt_dir))
        assert len(imgs) == len(gts) == num
        for img, gt in zip(imgs, gts):
            assert img.endswith('_leftImg8bit.png')
            assert gt.endswith('_gtFine_labelTrainIds.png')
            stem = img[:-len('_leftImg8bit.png')]
            assert gt == f'{stem}_gtFine_labelTrainIds.png'
            c, seq, frame = stem.rsplit('_', 2)
            assert c == city and len(seq) == 6 and len(frame) == 6


def test_acdc_layout_and_pairs(stream) -> None:
    root, manifest = stream
    for folder in CONDITIONS + ('clear', ):
        rgb = osp.join(root, 'acdc', 'rgb_anon', folder, 'train')
        gt = osp.join(root, 'acdc', 'gt', folder, 'train')
        seqs = sorted(os.listdir(rgb))
        assert seqs == sorted(os.listdir(gt))
        total = 0
        for seq in seqs:
            names = sorted(os.listdir(osp.join(rgb, seq)))
            for name in names:
                assert name.startswith(f'{seq}_frame_')
                assert name.endswith('_rgb_anon.png')
                lbl = name.replace('_rgb_anon.png', '_gt_labelTrainIds.png')
                assert osp.isfile(osp.join(gt, seq, lbl))
                frame = name[len(f'{seq}_frame_'):-len('_rgb_anon.png')]
                assert len(frame) == 6 and frame.isdigit()
            total += len(names)
        expected = 4 * len(CONDITIONS) if folder == 'clear' else 4
        assert total == expected
        if folder != 'clear':
            assert seqs == sorted(SEQUENCES[folder])
            assert manifest['sequences'][folder] == list(SEQUENCES[folder])


def test_images_and_labels(stream) -> None:
    root, _ = stream
    files = _files(root)
    pngs = [k for k in files if k.endswith('.png')]
    labels = [k for k in pngs if 'labelTrainIds' in k]
    assert len(labels) * 2 == len(pngs)
    for lbl in labels:
        label = cv2.imread(osp.join(root, lbl), cv2.IMREAD_UNCHANGED)
        assert label.ndim == 2 and label.dtype == np.uint8
        assert label.shape == (H, W)
        assert set(np.unique(label).tolist()) <= set(range(19)) | {255}
    for img in set(pngs) - set(labels):
        image = cv2.imread(osp.join(root, img), cv2.IMREAD_UNCHANGED)
        assert image.shape == (H, W, 3)


def test_clear_pairs_share_labels(stream) -> None:
    root, _ = stream
    seq = SEQUENCES['fog'][0]
    name = f'{seq}_frame_000000'
    gt = osp.join(root, 'acdc', 'gt', '{}', 'train', seq,
                  f'{name}_gt_labelTrainIds.png')
    rgb = osp.join(root, 'acdc', 'rgb_anon', '{}', 'train', seq,
                   f'{name}_rgb_anon.png')
    with open(gt.format('fog'), 'rb') as f:
        fog_gt = f.read()
    with open(gt.format('clear'), 'rb') as f:
        assert f.read() == fog_gt
    fog = cv2.imread(rgb.format('fog'))
    clear = cv2.imread(rgb.format('clear'))
    assert not np.array_equal(fog, clear)


def test_target_scenes_differ_from_source(stream) -> None:
    root, _ = stream
    src = cv2.imread(
        osp.join(root, 'cityscapes', 'gtFine', 'train', 'synthcity',
                 'synthcity_000000_000019_gtFine_labelTrainIds.png'), 0)
    seq = SEQUENCES['fog'][0]
    tgt = cv2.imread(
        osp.join(root, 'acdc', 'gt', 'clear', 'train', seq,
                 f'{seq}_frame_000000_gt_labelTrainIds.png'), 0)
    assert not np.array_equal(src, tgt)


def test_manifest(stream) -> None:
    root, manifest = stream
    with open(osp.join(root, 'manifest.json')) as f:
        on_disk = json.load(f)
    assert on_disk == json.loads(json.dumps(manifest))
    assert manifest['seed'] == 0
    assert manifest['height'] == H and manifest['width'] == W
    assert manifest['counts']['cityscapes_train'] == 3
    assert manifest['counts']['acdc_clear'] == 4 * len(CONDITIONS)
    assert 'version' in manifest


def test_deterministic_bytes(stream, tmp_path) -> None:
    root, _ = stream
    again = str(tmp_path / 'again')
    generate_synthetic_stream(again, seed=0, **KW)
    assert _files(root) == _files(again)
    other = str(tmp_path / 'other')
    generate_synthetic_stream(other, seed=1, **KW)
    a, b = _files(root), _files(other)
    pngs = [k for k in a if k.endswith('.png')]
    assert set(pngs) == {k for k in b if k.endswith('.png')}
    assert all(a[k] != b[k] for k in pngs if 'leftImg8bit' in k)


def test_order_independent(stream, tmp_path) -> None:
    # A subset of conditions in another order yields the same files.
    root, _ = stream
    sub = str(tmp_path / 'sub')
    generate_synthetic_stream(sub, seed=0, conditions=('snow', 'fog'), **KW)
    a, b = _files(root), _files(sub)
    for key, data in b.items():
        if key.endswith('.png'):
            assert a[key] == data, key


def test_unknown_condition(tmp_path) -> None:
    with pytest.raises(ValueError, match='valid'):
        generate_synthetic_stream(str(tmp_path), conditions=('hail', ), **KW)


def test_no_mmseg_imports_in_subpackage() -> None:
    pkg = osp.dirname(sys.modules['mmseg_ecotta.synthetic'].__file__)
    for name in os.listdir(pkg):
        if name.endswith('.py'):
            with open(osp.join(pkg, name)) as f:
                src = f.read()
            assert not re.search(
                r'^\s*(from|import)\s+(mmseg|mmengine|mmcv|torch)\b', src,
                re.MULTILINE), name
