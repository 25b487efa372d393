"""WeatherCorruption: determinism, seeds, severities, errors, streams."""
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS, TRANSFORMS

from mmseg_ecotta.datasets import CORRUPTIONS, SEVERITIES, WeatherCorruption
from ..conftest import REPO, write_cityscapes

MONOTONE = ('brightness', 'contrast', 'darkness', 'rain')


@pytest.fixture(scope='module')
def image() -> np.ndarray:
    """A smooth BGR scene: sky gradient over a road, one green box."""
    h, w = 48, 96
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 255 // w, np.full_like(x, 100), y * 255 // h], -1)
    img[h // 2:] = (60, 70, 80)
    img[10:30, 20:40] = (30, 150, 30)
    return img.astype(np.uint8)


def corrupt(img: np.ndarray,
            name: str,
            severity: int = 3,
            seed: int = 0,
            path: str = 'city/aachen_000000_000019_leftImg8bit.png'):
    results = dict(img=img.copy(), img_path=path)
    return WeatherCorruption(name, severity, seed)(results)['img']


def change(img: np.ndarray, out: np.ndarray) -> float:
    return float(np.abs(out.astype(np.float64) - img).mean())


@pytest.mark.parametrize('name', sorted(CORRUPTIONS))
def test_shape_dtype_and_change(image, name):
    out = corrupt(image, name)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert change(image, out) > 1


@pytest.mark.parametrize('name', sorted(CORRUPTIONS))
def test_deterministic_per_image_and_seed(image, name):
    np.testing.assert_array_equal(corrupt(image, name), corrupt(image, name))
    # The seed depends on the file name, not the folder it was read from.
    np.testing.assert_array_equal(
        corrupt(image, name, path='a/x.png'),
        corrupt(image, name, path='b/x.png'))


RANDOM = sorted(set(CORRUPTIONS) - {'brightness', 'contrast'})


@pytest.mark.parametrize('name', RANDOM)
def test_random_draws_differ_between_seeds_and_images(image, name):
    assert not np.array_equal(
        corrupt(image, name, seed=0), corrupt(image, name, seed=1))
    assert not np.array_equal(
        corrupt(image, name, path='x.png'), corrupt(image, name, path='y.png'))


@pytest.mark.parametrize('name', sorted(CORRUPTIONS))
def test_strongest_severity_changes_more_than_mildest(image, name):
    assert change(image, corrupt(image, name,
                                 5)) > change(image, corrupt(image, name, 1))


@pytest.mark.parametrize('name', MONOTONE)
def test_change_grows_with_every_severity(image, name):
    # ImageNet-C's fog/snow/frost constants are not monotone from one
    # level to the next (e.g. fog 3 and 4 share the same strength); these
    # four are by construction.
    changes = [change(image, corrupt(image, name, s)) for s in SEVERITIES]
    assert changes == sorted(changes) and len(set(changes)) == 5


def test_registered_and_input_is_bgr(image):
    init_default_scope('mmseg')
    transform = TRANSFORMS.build(
        dict(type='WeatherCorruption', corruption='brightness', severity=5))
    out = transform(dict(img=image.copy(), img_path='x.png'))['img']
    # Brightness raises HSV value: the brightest channel (in BGR order)
    # of each pixel goes up, hue is kept, so channel order is preserved.
    assert (out.max(-1) >= image.max(-1)).all()
    assert (out.argmax(-1) == image.argmax(-1)).mean() > 0.9


def test_seed_from_pixels_without_path(image):
    transform = WeatherCorruption('fog')
    a = transform(dict(img=image.copy()))['img']
    b = transform(dict(img=image.copy()))['img']
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize('kwargs, match', [
    (dict(corruption='hail'), r"'hail'.*'brightness'.*'snow'"),
    (dict(corruption='fog', severity=0), r'\[1, 2, 3, 4, 5\].*0'),
    (dict(corruption='fog', severity=6), r'\[1, 2, 3, 4, 5\].*6'),
])
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        WeatherCorruption(**kwargs)


def test_rejects_float_image(image):
    with pytest.raises(TypeError, match='uint8'):
        WeatherCorruption('fog')(dict(img=image.astype(np.float32)))


def corrupted_stream_cfg(root: str, names, rounds: int) -> dict:
    """The data/README.md snippet: one corrupted Cityscapes split a domain."""

    def corrupted(name: str) -> dict:
        return dict(
            name=name,
            dataset=dict(
                type='CityscapesDataset',
                data_root=root,
                data_prefix=dict(
                    img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
                pipeline=[
                    dict(type='LoadImageFromFile'),
                    dict(
                        type='WeatherCorruption', corruption=name, severity=5),
                    dict(type='LoadAnnotations'),
                    dict(type='PackSegInputs')
                ]))

    return dict(
        type='WeatherStreamDataset',
        domains=[corrupted(n) for n in names],
        rounds=rounds)


def test_corrupted_cityscapes_stream(tmp_path):
    root = write_cityscapes(str(tmp_path / 'cityscapes'), {'val': 2})
    names = ['fog', 'darkness', 'rain', 'snow']
    init_default_scope('mmseg')
    stream = DATASETS.build(corrupted_stream_cfg(root, names, rounds=2))
    clean = DATASETS.build(
        dict(
            type='CityscapesDataset',
            data_root=root,
            data_prefix=dict(
                img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
            pipeline=[
                dict(type='LoadImageFromFile'),
                dict(type='LoadAnnotations'),
                dict(type='PackSegInputs')
            ]))
    assert len(stream) == 2 * 4 * 2
    for index in range(len(stream)):
        sample = stream[index]
        meta = sample['data_samples']
        local = index % 2
        assert meta.domain == names[(index // 2) % 4]
        assert meta.round == index // 8
        reference = clean[local]
        assert meta.img_path == reference['data_samples'].img_path
        # Same label, corrupted image; the same in every round.
        assert (meta.gt_sem_seg.data ==
                reference['data_samples'].gt_sem_seg.data).all()
        assert not (sample['inputs'] == reference['inputs']).all()
        if index >= 8:
            again = stream[index - 8]['inputs']
            assert (sample['inputs'] == again).all()


def test_corrupted_stream_config_builds(tmp_path):
    from mmengine.runner import Runner
    root = write_cityscapes(str(tmp_path / 'cityscapes'), {'val': 1})
    cfg = Config.fromfile(
        osp.join(REPO,
                 'configs/_base_/datasets/cityscapes_corrupted_stream.py'))
    domains = cfg.test_dataloader.dataset.domains
    assert [d.name for d in domains] == ['fog', 'darkness', 'rain', 'snow']
    for domain in domains:
        corruption = domain.dataset.pipeline[1]
        assert corruption.type == 'WeatherCorruption'
        assert corruption.corruption == domain.name
        domain.dataset.data_root = root
    cfg.test_dataloader.update(num_workers=0, persistent_workers=False)
    init_default_scope('mmseg')
    loader = Runner.build_dataloader(cfg.test_dataloader)
    assert [b['data_samples'][0].domain
            for b in loader][:4] == ['fog', 'darkness', 'rain', 'snow']
    assert len(loader) == 4 * 10


def test_library_backend_is_imagenet_c_and_restores_numpy_state(image):
    """Fog/frost come from imagecorruptions; its global draws are sealed."""
    from imagecorruptions import corrupt as library
    rgb = np.ascontiguousarray(image[..., ::-1])
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    out = corrupt(image, 'frost')
    np.testing.assert_array_equal(np.random.get_state()[1], before)
    transform = WeatherCorruption('frost', 3, 0)
    np.random.seed(
        transform.image_seed(
            dict(
                img=image,
                img_path='city/aachen_000000_000019_leftImg8bit.png')))
    expected = np.clip(
        np.round(library(rgb, corruption_name='frost', severity=3)), 0, 255)
    np.testing.assert_array_equal(out[..., ::-1], expected.astype(np.uint8))
    builtin = WeatherCorruption('frost', 3, 0, backend='builtin')
    results = dict(img=image.copy(), img_path='a/x.png')
    assert change(builtin(results)['img'], corrupt(image, 'frost')) > 1


def test_own_corruptions_are_the_same_in_both_backends(image):
    for name in ('darkness', 'rain'):
        results = [
            WeatherCorruption(name, 3, 0, backend=backend)(dict(
                img=image.copy(), img_path='a/x.png'))['img']
            for backend in ('imagecorruptions', 'builtin')
        ]
        np.testing.assert_array_equal(*results)


def test_backend_errors_name_the_value_and_the_choices():
    with pytest.raises(ValueError, match="'skimage'.*imagecorruptions"):
        WeatherCorruption('fog', backend='skimage')
    # ImageNet-C's other corruptions exist only in the library.
    WeatherCorruption('spatter')
    with pytest.raises(ValueError, match="'spatter' for backend 'builtin'"):
        WeatherCorruption('spatter', backend='builtin')


def test_library_backend_refuses_tiny_images_with_the_fix():
    tiny = np.zeros((16, 40, 3), np.uint8)
    with pytest.raises(ValueError, match="16x40.*backend='builtin'"):
        WeatherCorruption('fog')(dict(img=tiny, img_path='a.png'))
