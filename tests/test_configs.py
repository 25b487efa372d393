"""Every shipped config parses, imports the plugin and builds its model."""
import argparse
import glob
import os.path as osp

import pytest
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
from torch.optim import Optimizer

from mmseg_ecotta.tta import build_tta_method
from mmseg_ecotta.utils import check_plugin_import, load_config
from .conftest import REPO

CONFIGS = sorted(
    p for p in glob.glob(
        osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
    if '_base_' not in p)
MODEL_DEFINITIONS = sorted(
    glob.glob(osp.join(REPO, 'configs', '_base_', 'models', '*.py')))
WARMUPS = sorted(
    glob.glob(
        osp.join(REPO, 'configs', 'ecotta', '**', 'ecotta-warmup_*.py'),
        recursive=True))
# Run configs of the methods that train parameters (they have an optimizer).
TRAINING_RUNS = sorted(
    p for method in ('tent', 'eata', 'cotta', 'ecotta')
    for p in glob.glob(osp.join(REPO, 'configs', method, f'{method}_*.py')))


def _ids(paths):
    return [osp.relpath(p, REPO) for p in paths]


@pytest.mark.parametrize('path', CONFIGS, ids=_ids(CONFIGS))
def test_config_builds(path):
    cfg = Config.fromfile(path)
    check_plugin_import(cfg, path)
    assert cfg.model.get('pretrained') is None, 'never download weights'
    init_default_scope('mmseg')
    MODELS.build(cfg.model)


def _corruptions(node):
    """Every WeatherCorruption's corruption in a (nested) config node."""
    if isinstance(node, dict):
        found = []
        if node.get('type') == 'WeatherCorruption':
            found.append(node['corruption'])
        return found + [c for v in node.values() for c in _corruptions(v)]
    if isinstance(node, (list, tuple)):
        return [c for v in node for c in _corruptions(v)]
    return []


@pytest.mark.parametrize('path', WARMUPS, ids=_ids(WARMUPS))
def test_no_warm_up_sees_a_weather_streams_corruption(path):
    # The warm-up is source training: the streams' corruptions, and those
    # that look like them, stay unseen until test time.
    from mmseg_ecotta.datasets.corrupted_stream import ACDC_STAND_INS
    seen = set(_corruptions(Config.fromfile(path).train_dataloader))
    assert seen.isdisjoint(
        set(ACDC_STAND_INS.values())
        | {'frost', 'spatter', 'brightness', 'contrast'}), seen
    # Every shipped warm-up (CamVid, synthetic, stock-width, R50
    # Cityscapes) corrupts half of its crops, and so do the ablations
    # named so.
    shipped = 'ablations' not in path
    assert bool(seen) == ('corruptaug' in path or shipped), seen


@pytest.mark.parametrize(
    'path', MODEL_DEFINITIONS, ids=_ids(MODEL_DEFINITIONS))
def test_model_definition_builds(path):
    cfg = Config.fromfile(path)
    assert cfg.model.get('pretrained') is None, 'never download weights'
    init_default_scope('mmseg')
    MODELS.build(cfg.model)


def test_every_method_has_a_folder_of_runs():
    for method in ('source', 'bn_adapt', 'tent', 'eata', 'cotta', 'ecotta'):
        assert glob.glob(osp.join(REPO, 'configs', method, f'{method}_*.py'))
        assert osp.isfile(
            osp.join(REPO, 'configs', '_base_', 'tta', f'{method}.py'))


@pytest.mark.parametrize('path', TRAINING_RUNS, ids=_ids(TRAINING_RUNS))
def test_overriding_lr_alone_keeps_the_optimizer(path):
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args(
        ['--cfg-options', 'adaptation.method.optimizer.lr=1e-4'])
    before = Config.fromfile(path).adaptation.method.optimizer
    after = load_config(path, args.cfg_options).adaptation.method
    assert after.optimizer == dict(before, lr=1e-4)
    if 'synthetic' not in path:
        return  # same configs/_base_/tta/ file as the synthetic run's
    init_default_scope('mmseg')
    cfg = Config.fromfile(path)
    method = build_tta_method(after.to_dict(), MODELS.build(cfg.model).eval())
    assert isinstance(method.optimizer, Optimizer)
    assert type(method.optimizer).__name__ == before.type
    assert [g['lr'] for g in method.optimizer.param_groups] == [1e-4]


def test_config_without_plugin_import_is_refused(tmp_path):
    path = tmp_path / 'c.py'
    path.write_text("model = dict(type='MetaEncoderDecoder', "
                    "backbone=dict(type='MetaResNetV1c'))\n")
    with pytest.raises(ValueError, match="custom_imports = dict"):
        check_plugin_import(Config.fromfile(str(path)), str(path))
