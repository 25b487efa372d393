"""Loading a file never runs its code unless the user opts in."""
import glob
import io
import os.path as osp
import pickle
import subprocess
import sys
import zipfile
from collections import OrderedDict
from typing import Dict

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner import load_checkpoint

from mmseg_ecotta import safe_load
from mmseg_ecotta.safe_load import (UnsafeFileError, check_plain,
                                    load_checkpoint_file, save_plain)
from mmseg_ecotta.utils import load_config
from .conftest import (REPO, TINY_MODEL, ShellPayload,
                       assert_refused_before_running, build_model)

SHIPPED = sorted(glob.glob(osp.join(REPO, 'data/checkpoints/*.pth')))
CITYSCAPES_CLASSES = ('road', 'sidewalk', 'building', 'wall', 'fence', 'pole',
                      'traffic light', 'traffic sign', 'vegetation', 'terrain',
                      'sky', 'person', 'rider', 'car', 'truck', 'bus', 'train',
                      'motorcycle', 'bicycle')
PALETTE = [[128, 64, 128], [244, 35, 232], [70, 70, 70], [102, 102, 156],
           [190, 153, 153], [153, 153, 153], [250, 170, 30], [220, 220, 0],
           [107, 142, 35], [152, 251, 152], [70, 130, 180], [220, 20, 60],
           [255, 0, 0], [0, 0, 142], [0, 0, 70], [0, 60, 100], [0, 80, 100],
           [0, 0, 230], [119, 11, 32]]


def released_checkpoint(path: str, state_dict: Dict[str, torch.Tensor],
                        layout: str) -> None:
    """Write a checkpoint laid out as mmseg's released Cityscapes ones.

    ``state_dict``: a model's, e.g. ``model.state_dict()``.

    ``mmseg0``: mmcv 1.x ``save_checkpoint`` on torch < 1.6 (legacy
    serialization), ``CLASSES``/``PALETTE`` and the run's metadata in
    ``meta``, with the optimizer. ``mmseg1``: the zip format, mmseg 1.x
    ``dataset_meta`` with numpy values (seed, palette array).
    """
    meta = dict(
        mmcv_version='1.1.4',
        time='Sat Jun  6 11:40:49 2020',
        env_info='sys.platform: linux\nPython: 3.7.7\nCUDA available: True',
        config="norm_cfg = dict(type='SyncBN', requires_grad=True)\n",
        exp_name='deeplabv3plus_r50-d8_512x1024_80k_cityscapes.py',
        mmseg_version='0.5.0+b72a6d0',
        epoch=1,
        iter=80000,
        hook_msgs=dict(last_ckpt='work_dirs/iter_80000.pth'))
    if layout == 'mmseg0':
        meta.update(seed=0, CLASSES=CITYSCAPES_CLASSES, PALETTE=PALETTE)
    else:
        meta.update(
            seed=np.int64(1234),
            dataset_meta=dict(
                classes=CITYSCAPES_CLASSES,
                palette=np.array(PALETTE, dtype=np.uint8)))
    # nn.Module.state_dict(): an OrderedDict with a ``_metadata`` attribute.
    ckpt = dict(meta=meta, state_dict=state_dict)
    if layout == 'mmseg0':
        ckpt['optimizer'] = dict(
            state={0: dict(momentum_buffer=torch.zeros(3))},
            param_groups=[
                dict(lr=1e-4, momentum=0.9, weight_decay=5e-4, params=[0])
            ])
    torch.save(ckpt, path, _use_new_zipfile_serialization=layout != 'mmseg0')


@pytest.mark.parametrize('layout', ['mmseg0', 'mmseg1'])
def test_mmseg_released_checkpoint_loads_safely(layout, tmp_path):
    source = build_model(TINY_MODEL)
    path = str(tmp_path / f'{layout}.pth')
    released_checkpoint(path, source.state_dict(), layout)
    model = build_model(TINY_MODEL)
    ckpt = load_checkpoint(model, path, map_location='cpu', strict=True)
    for key, value in source.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    meta = ckpt['meta']
    if layout == 'mmseg0':
        assert meta['CLASSES'] == CITYSCAPES_CLASSES
        assert ckpt['optimizer']['param_groups'][0]['lr'] == 1e-4
    else:
        assert meta['seed'] == 1234
        assert meta['dataset_meta']['palette'].tolist() == PALETTE


@pytest.mark.parametrize('path', SHIPPED, ids=osp.basename)
def test_shipped_checkpoints_are_plain_data(path):
    assert SHIPPED  # the glob found the shipped files
    # No allow-list needed at all: torch's own safe unpickler reads them.
    assert torch.serialization.get_unsafe_globals_in_checkpoint(path) == []
    ckpt = torch.load(path, weights_only=True)
    check_plain(ckpt)  # what they hold is plain data throughout
    assert set(ckpt) == {'state_dict', 'meta'}


@pytest.mark.parametrize('serialization', ['zip', 'legacy'])
def test_planted_checkpoint_is_refused_before_running(serialization, tmp_path):
    marker = str(tmp_path / 'pwned')
    path = str(tmp_path / 'planted.pth')
    model = build_model(TINY_MODEL)
    torch.save(
        dict(
            meta=dict(note=ShellPayload(marker)),
            state_dict=model.state_dict()),
        path,
        _use_new_zipfile_serialization=serialization == 'zip')
    assert_refused_before_running(
        lambda: load_checkpoint(model, path, map_location='cpu'), path, marker)


def test_planted_checkpoint_loads_with_the_opt_in(tmp_path, unsafe_load):
    marker = str(tmp_path / 'pwned')
    path = str(tmp_path / 'planted.pth')
    torch.save(dict(meta=dict(note=ShellPayload(marker))), path)
    load_checkpoint_file(path)
    load_checkpoint_file(path)
    assert osp.exists(marker)  # it ran: the user said they trust it
    # One warning for the opt-in, one for every file loaded under it.
    assert len(unsafe_load) == 3
    assert all(path in w for w in unsafe_load[1:])


class GetAttr:
    """Pickles as ``getattr(owner, name)``."""

    def __init__(self, owner, name):
        self.owner, self.name = owner, name

    def __reduce__(self):
        return getattr, (self.owner, self.name)


@pytest.mark.parametrize('owner,name', [(HistoryBuffer, '__init__'),
                                        (np.ndarray, 'tofile')])
def test_getattr_is_admitted_for_history_buffer_statistics_only(
        owner, name, tmp_path):
    path = str(tmp_path / 'getattr.pth')
    torch.save(dict(meta=dict(x=GetAttr(owner, name))), path)
    with pytest.raises(UnsafeFileError, match=f"getattr.*'{name}'"):
        load_checkpoint_file(path)
    torch.save(dict(meta=dict(x=GetAttr(HistoryBuffer, 'mean'))), path)
    assert load_checkpoint_file(path)['meta']['x'] is HistoryBuffer.mean


def test_save_plain_names_what_is_not_plain():
    plain = dict(
        weights=OrderedDict(w=torch.ones(2)),
        shape=torch.Size([2]),
        dtype=torch.float16,
        values=[1, 2.5, True, None, 'x', (b'y', )])
    buffer = io.BytesIO()
    save_plain(plain, buffer)
    buffer.seek(0)
    assert torch.load(buffer, weights_only=True)['values'][5] == (b'y', )
    with pytest.raises(TypeError, match=r"\['values'\]\[1\] is a numpy"):
        check_plain(dict(values=[1, np.float32(2)]))


def test_config_key_opts_in(tmp_path, monkeypatch):
    monkeypatch.setattr(safe_load, '_unsafe_load_source', None)
    config = tmp_path / 'cfg.py'
    config.write_text('unsafe_load = False\n')
    load_config(str(config))
    assert not safe_load.unsafe_load_allowed()
    config.write_text("unsafe_load = 'yes'\n")
    with pytest.raises(ValueError, match="unsafe_load='yes'"):
        load_config(str(config))
    config.write_text('unsafe_load = True\n')
    load_config(str(config))
    assert safe_load.unsafe_load_allowed()


class ForgedDtype:
    """Pickles as ``numpy.dtype('V8')`` whose state adds an object field."""

    def __init__(self, base: str) -> None:
        self.base = base

    def __reduce__(self):
        # Flags 25: NPY_ITEM_REFCOUNT | NPY_NEEDS_INIT | NPY_NEEDS_PYAPI,
        # without NPY_LIST_PICKLE, so numpy reads the array's raw bytes.
        return (np.dtype, (self.base, False, True), (3, '|', None, ('a', ), {
            'a': (np.dtype('O'), 0)
        }, 8, 1, 25))


class ForgedArray:
    """Pickles as numpy's ``_reconstruct`` over 8 bytes and that dtype.

    numpy takes the bytes for an object pointer and decrements it when the
    array is freed: the process dies with SIGSEGV (issue 27).
    """

    def __init__(self, base: str) -> None:
        self.base = base

    def __reduce__(self):
        try:
            from numpy._core.multiarray import _reconstruct
        except ImportError:  # numpy < 2
            from numpy.core.multiarray import _reconstruct
        return (_reconstruct, (np.ndarray, (0, ), b'b'),
                (1, (1, ), ForgedDtype(self.base), False, b'\x41' * 8))


@pytest.mark.parametrize('base', ['V8', 'f8'])
def test_forged_numpy_dtype_is_refused_without_a_crash(base, tmp_path):
    path = str(tmp_path / 'forged.pth')
    torch.save(dict(meta=dict(x=ForgedArray(base))), path)
    # In a subprocess: on a crash, the test must fail, not the test run.
    code = ('import sys; from mmengine.runner import CheckpointLoader; '
            'import mmseg_ecotta; '
            'CheckpointLoader.load_checkpoint(sys.argv[1])')
    result = subprocess.run([sys.executable, '-c', code, path],
                            cwd=REPO,
                            capture_output=True,
                            text=True)
    assert result.returncode == 1, (result.returncode, result.stderr[-2000:])
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith('mmseg_ecotta.safe_load.UnsafeFileError')
    assert repr(path) in error and 'numpy dtype' in error


@pytest.mark.parametrize('dtype', ['?', 'u1', '>i2', '<i8', 'f2', '>f4', 'c8'])
def test_plain_numpy_values_load_bit_for_bit(dtype, tmp_path):
    array = np.arange(6).reshape(2, 3).astype(dtype)
    values = dict(
        array=array,
        fortran=np.asfortranarray(array),
        scalar=array.flat[1],
        zero_d=np.array(array.flat[2]),
        dtype=array.dtype,
        buffer=HistoryBuffer([1.0, 2.0], [1, 1]))
    path = str(tmp_path / 'numpy.pth')
    torch.save(dict(meta=values, state_dict={}), path)
    meta = load_checkpoint_file(path)['meta']
    # As numpy's own unpickling rebuilds them (arrays in native order).
    expected = pickle.loads(pickle.dumps(values))
    for key in ('array', 'fortran', 'scalar', 'zero_d'):
        assert type(meta[key]) is type(expected[key]), key
        assert meta[key].dtype == expected[key].dtype, key
        assert meta[key].tobytes() == expected[key].tobytes(), key
    assert meta['fortran'].flags.f_contiguous
    assert meta['dtype'] == array.dtype
    assert meta['buffer'].mean() == 1.5


def test_object_arrays_are_refused(tmp_path):
    path = str(tmp_path / 'objects.pth')
    torch.save(dict(meta=dict(x=np.array([1, 'a'], dtype=object))), path)
    with pytest.raises(UnsafeFileError, match="numpy dtype 'object'"):
        load_checkpoint_file(path)


def _zip(path, names) -> None:
    with zipfile.ZipFile(path, 'w') as archive:
        for name in names:
            archive.writestr(name, '3\n')


@pytest.mark.parametrize('kind, message', [
    ('zip', 'not a readable PyTorch file'),
    ('zip_without_data_pkl', 'not a readable PyTorch file.*data.pkl'),
    ('legacy_cut_short', 'not a readable PyTorch file'),
    ('list', 'holds a list, not weights'),
    ('tensor', 'holds a Tensor, not weights'),
    ('int', 'holds a int, not weights'),
])
def test_malformed_checkpoints_name_the_file(kind, message, tmp_path):
    path = str(tmp_path / f'{kind}.pth')
    if kind == 'zip':
        _zip(path, ['hello.txt'])
    elif kind == 'zip_without_data_pkl':
        _zip(path, ['archive/version'])
    elif kind == 'legacy_cut_short':
        torch.save(
            dict(state_dict=dict(w=torch.ones(300))),
            path,
            _use_new_zipfile_serialization=False)
        with open(path, 'rb') as f:
            data = f.read()
        with open(path, 'wb') as f:
            f.write(data[:len(data) // 2])
    else:
        torch.save(dict(list=[1, 2], tensor=torch.ones(2), int=5)[kind], path)
    model = build_model(TINY_MODEL)
    with pytest.raises(ValueError, match=message) as info:
        load_checkpoint(model, path, map_location='cpu')
    assert f"checkpoint '{path}'" in str(info.value)


@pytest.mark.parametrize('bad', [float('nan'), float('inf')])
def test_non_finite_weights_are_refused_naming_the_tensor(
        bad, tmp_path, monkeypatch):
    model = build_model(TINY_MODEL)
    state_dict = model.state_dict()
    name = 'decode_head.conv_seg.weight'
    state_dict[name].view(-1)[3] = bad
    path = str(tmp_path / 'diverged.pth')
    torch.save(dict(state_dict=state_dict), path)
    with pytest.raises(ValueError, match=f"'{name}' has 1 NaN or inf") as e:
        load_checkpoint(model, path, map_location='cpu')
    assert f"checkpoint '{path}'" in str(e.value)
    assert '--allow-nonfinite' in str(e.value)
    # The opt-out, for whoever needs to inspect such a checkpoint.
    monkeypatch.setattr(safe_load, '_nonfinite_source', None)
    safe_load.allow_nonfinite('--allow-nonfinite')
    load_checkpoint(model, path, map_location='cpu')
    assert not torch.isfinite(model.state_dict()[name]).all()


def test_the_opt_in_is_reported_from_where_the_user_gave_it(
        tmp_path, monkeypatch):
    """--unsafe-load becomes unsafe_load = True, which the hook reads."""
    from types import SimpleNamespace

    from mmseg_ecotta.engine import TestTimeAdaptationHook, TTAResultsHook
    warnings = []
    monkeypatch.setattr(safe_load, '_unsafe_load_source', None)
    monkeypatch.setattr(
        safe_load,
        'print_log',
        lambda message, logger=None, level=None: warnings.append(message))
    config = tmp_path / 'cfg.py'
    config.write_text("adaptation = dict(method=dict(type='Tent'))\n")
    cfg = load_config(str(config), unsafe_load=True)
    TestTimeAdaptationHook().before_run(
        SimpleNamespace(cfg=cfg, hooks=[TTAResultsHook()]))
    path = str(tmp_path / 'plain.pth')
    torch.save(dict(state_dict={}), path)
    load_checkpoint_file(path)
    assert warnings[-1].startswith(f'loading checkpoint {path} with full')
    assert '(--unsafe-load)' in warnings[-1]
