"""The shipped defaults are the published hyper-parameters, or say why not.

The table is :data:`mmseg_ecotta.tta.published.PUBLISHED`; a failure names
the source of the value that changed.
"""
import glob
import inspect
import os.path as osp

import pytest
from mmengine.config import Config

from mmseg_ecotta.registry import TTA_METHODS
from mmseg_ecotta.tta.published import (PUBLISHED, entry, markdown_table,
                                        normalised)
from .conftest import REPO

DEFAULTS = osp.join(REPO, 'configs', '_base_', 'tta')
FILES = sorted(
    osp.splitext(osp.basename(p))[0]
    for p in glob.glob(osp.join(DEFAULTS, '*.py')))


def shipped(file: str) -> dict:
    """The method settings ``configs/_base_/tta/<file>.py`` ships."""
    cfg = Config.fromfile(osp.join(DEFAULTS, f'{file}.py'))
    method = cfg.adaptation.method.to_dict()
    method.pop('type')
    return method


@pytest.mark.parametrize(
    'published', PUBLISHED, ids=[f'{p.file}.{p.key}' for p in PUBLISHED])
def test_shipped_default_is_the_published_value(published):
    settings = shipped(published.file)
    where = f'configs/_base_/tta/{published.file}.py'
    assert published.key in settings, f'{where} no longer sets ' \
        f'{published.key} ({published.source} publishes {published.value!r})'
    value = settings[published.key]
    assert normalised(value) == normalised(published.default), (
        f'{where} ships {published.key}={value!r}, but {published.source} '
        f'publishes {published.value!r}: restore it, or list the deviation '
        'and its reason in mmseg_ecotta/tta/published.py')


@pytest.mark.parametrize('file', FILES)
def test_every_shipped_setting_is_in_the_table(file):
    for key in shipped(file):
        entry(file, key)  # KeyError naming the unlisted setting


def test_every_deviation_says_why():
    for p in PUBLISHED:
        assert bool(p.reason) == p.deviates, (p.file, p.key)


def test_constructor_defaults_are_the_shipped_ones():
    # A method built without its config file gets the same values.
    for p in PUBLISHED:
        cls = next((c for c in TTA_METHODS.module_dict.values()
                    if c.__module__.endswith(f'.{p.file}')), None)
        if cls is None:  # a recipe's file (tent_cotta.py)
            continue
        param = inspect.signature(cls.__init__).parameters.get(p.key)
        if param is None or p.key == 'optimizer':  # optimizer: no default
            continue
        assert normalised(param.default) == normalised(p.default), (cls, p.key)


def test_docs_page_holds_the_table():
    with open(osp.join(REPO, 'docs', 'published_hyperparameters.md')) as f:
        assert markdown_table() in f.read(), (
            'docs/published_hyperparameters.md is out of date: paste '
            'mmseg_ecotta.tta.published.markdown_table() into it')
