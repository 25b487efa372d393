"""Config loading: what it refuses before anything runs."""
import argparse

import pytest
from mmengine.config import DictAction

from mmseg_ecotta.engine.tta_hook import AdaptationSettings
from mmseg_ecotta.utils import load_config
from ..conftest import synthetic_config

TENT = synthetic_config('tent')
LR = 'adaptation.method.optimizer.lr'


@pytest.mark.parametrize('value', ['inf', '-inf', 'nan'])
def test_a_non_finite_setting_is_refused_up_front(value):
    # lr=inf once ran to the first results write and lost the run.
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    options = parser.parse_args(['--cfg-options', f'{LR}={value}'])
    with pytest.raises(ValueError, match=f'{LR}={value} in ') as info:
        load_config(TENT, options.cfg_options)
    assert '--cfg-options' in str(info.value)


def test_the_hook_refuses_a_non_finite_method_setting():
    """mmseg's tools/test.py reads the settings without load_config."""
    with pytest.raises(ValueError, match='adaptation.method.optimizer.lr=inf'):
        AdaptationSettings(
            method=dict(type='Tent', optimizer=dict(lr=float('inf'))))


def test_a_symlink_where_the_config_is_dumped_is_refused(tmp_path):
    victim = tmp_path / 'victim.txt'
    victim.write_text('precious')
    work_dir = tmp_path / 'work'
    work_dir.mkdir()
    config = tmp_path / 'run.py'
    config.write_text('x = 1\n')
    (work_dir / 'run.py').symlink_to(victim)
    with pytest.raises(ValueError, match='is a symlink') as info:
        load_config(str(config), work_dir=str(work_dir))
    assert str(work_dir / 'run.py') in str(info.value)
    assert victim.read_text() == 'precious'
