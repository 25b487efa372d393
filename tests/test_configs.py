"""Every shipped config parses, imports the plugin and builds its model."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

from mmseg_ecotta.utils import check_plugin_import
from .conftest import REPO

CONFIGS = sorted(
    p for p in glob.glob(
        osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
    if '_base_' not in p)


@pytest.mark.parametrize(
    'path', CONFIGS, ids=[osp.relpath(p, REPO) for p in CONFIGS])
def test_config_builds(path):
    cfg = Config.fromfile(path)
    check_plugin_import(cfg, path)
    assert cfg.model.get('pretrained') is None, 'never download weights'
    init_default_scope('mmseg')
    MODELS.build(cfg.model)


def test_config_without_plugin_import_is_refused(tmp_path):
    path = tmp_path / 'c.py'
    path.write_text("model = dict(type='MetaEncoderDecoder', "
                    "backbone=dict(type='MetaResNetV1c'))\n")
    with pytest.raises(ValueError, match="custom_imports = dict"):
        check_plugin_import(Config.fromfile(str(path)), str(path))
