"""One test per stack breakage handled by :mod:`mmseg_ecotta.compat`."""
import importlib
import subprocess
import sys

import pytest
import torch

import mmseg_ecotta
from mmseg_ecotta import compat


def test_mmseg_models_import_with_or_without_compiled_ops():
    # Run in a fresh interpreter: the plugin import must be all it takes.
    code = ('import mmseg_ecotta, mmseg.models, mmseg.utils, '
            'mmseg.datasets; print(mmseg_ecotta.ACTIVE_SHIMS)')
    out = subprocess.run([sys.executable, '-c', code],
                         capture_output=True,
                         text=True,
                         check=True)
    assert "'mmcv_ops': " + str(compat.mmcv_ops_missing()) in out.stdout


@pytest.mark.skipif(
    not compat.mmcv_ops_missing(), reason='full mmcv: no shim needed')
def test_stubbed_mmcv_op_fails_clearly_when_used():
    from mmcv.ops import point_sample
    with pytest.raises(RuntimeError, match='MMCV_WITH_OPS=1'):
        point_sample(torch.zeros(1), torch.zeros(1))


def test_pkg_resources_backs_mmseg_base_config_syntax(tmp_path):
    from mmengine.config import Config
    from mmengine.utils import get_installed_path, is_installed
    assert is_installed('mmsegmentation')
    assert get_installed_path('mmsegmentation').endswith('mmseg')
    cfg = tmp_path / 'c.py'
    cfg.write_text("_base_ = 'mmseg::_base_/models/deeplabv3plus_r50-d8.py'\n")
    assert Config.fromfile(str(cfg)).model.type == 'EncoderDecoder'


def test_pkg_resources_shim_only_when_missing():
    real = importlib.util.find_spec('pkg_resources')
    shim_active = sys.modules['pkg_resources'].__name__ != 'pkg_resources'
    assert shim_active == (
        real is None or real.name == 'mmseg_ecotta._pkg_resources')


def test_runner_checkpoint_with_message_hub_loads_safely(tmp_path):
    """mmengine pickles a HistoryBuffer per logged scalar, numpy scalars."""
    from collections import OrderedDict

    import numpy as np
    from mmengine.logging import HistoryBuffer
    from mmengine.runner import load_checkpoint
    buffer = HistoryBuffer()
    buffer.update(np.float64(1.5))
    buffer.update(2.5)
    path = str(tmp_path / 'iter_1.pth')
    model = torch.nn.Conv2d(1, 1, 1)
    torch.save(
        dict(
            meta=dict(iter=1, seed=0),
            message_hub=dict(
                log_scalars=OrderedDict(loss=buffer),
                runtime_info=OrderedDict(eta=np.float64(3.0))),
            state_dict=model.state_dict()), path)
    ckpt = load_checkpoint(model, path, map_location='cpu')
    hub = ckpt['message_hub']
    assert hub['log_scalars']['loss'].statistics('mean') == 2.0
    assert hub['runtime_info']['eta'] == 3.0


def test_missing_checkpoint_names_the_path(tmp_path):
    from mmengine.runner import load_checkpoint
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        load_checkpoint(torch.nn.Conv2d(1, 1, 1), str(tmp_path / 'nope.pth'))


def test_shims_are_idempotent():
    assert compat.apply_all() == mmseg_ecotta.ACTIVE_SHIMS
