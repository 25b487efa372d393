"""The source checkpoint: the one private mmengine access, and the check."""
from types import SimpleNamespace

import pytest
from mmengine.model import BaseModel
from mmengine.runner import Runner

from mmseg_ecotta.engine import source_checkpoint


class ToyModel(BaseModel):

    def forward(self, inputs, data_samples=None, mode='tensor'):
        return inputs


def test_source_checkpoint_reads_what_mmengine_runner_keeps(tmp_path):
    # Fails when mmengine moves load_from: source_checkpoint() is the one
    # place that reads the private attribute, and must follow it.
    runner = Runner(
        model=ToyModel(), work_dir=str(tmp_path), load_from='source.pth')
    assert source_checkpoint(runner) == 'source.pth'
    runner = Runner(model=ToyModel(), work_dir=str(tmp_path / 'b'))
    assert source_checkpoint(runner) is None


def test_source_checkpoint_fails_loudly_without_the_attribute():
    with pytest.raises(AttributeError, match='mmengine changed'):
        source_checkpoint(SimpleNamespace(load_from='source.pth'))
