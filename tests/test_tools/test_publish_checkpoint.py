"""tools/publish_checkpoint.py: one checkpoint slimmed, several averaged."""
import importlib.util
import os.path as osp
import subprocess
import sys

import pytest
import torch

from ..conftest import REPO

TOOL = osp.join(REPO, 'tools', 'publish_checkpoint.py')


def _tool():
    spec = importlib.util.spec_from_file_location('publish_checkpoint', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _state_dict(value, batches):
    return {
        'meta_nets.0.conv.weight': torch.full((2, 2), value),
        'meta_nets.0.bn.num_batches_tracked': torch.tensor(batches),
    }


def test_several_checkpoints_publish_as_their_average(tmp_path):
    paths = []
    for seed, value in enumerate([1.0, 2.0, 6.0]):
        paths.append(str(tmp_path / f'seed{seed}.pth'))
        torch.save(
            dict(
                state_dict=_state_dict(value, 10 + seed),
                meta=dict(iter=1200, dataset_meta=None)), paths[-1])
    out = str(tmp_path / 'soup.pth')
    result = subprocess.run([sys.executable, TOOL, *paths, out],
                            cwd=REPO,
                            capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    soup = torch.load(out, weights_only=True)
    weights = soup['state_dict']
    assert torch.equal(weights['meta_nets.0.conv.weight'],
                       torch.full((2, 2), 3.0))
    # Integer buffers are not averaged: the first checkpoint's stay.
    assert weights['meta_nets.0.bn.num_batches_tracked'].item() == 10
    assert soup['meta']['source'] == ['seed0.pth', 'seed1.pth', 'seed2.pth']


def test_checkpoints_of_different_models_are_refused():
    average = _tool().average
    first = _state_dict(1.0, 1)
    wider = dict(first, **{'meta_nets.0.conv.weight': torch.ones(3, 2)})
    with pytest.raises(ValueError, match=r"conv.weight.*\(2, 2\).*\(3, 2\)"):
        average([first, wider], ['a.pth', 'b.pth'])
    extra = dict(first, **{'meta_nets.1.conv.weight': torch.ones(2, 2)})
    with pytest.raises(ValueError, match="'meta_nets.1.conv.weight'.*b.pth"):
        average([first, extra], ['a.pth', 'b.pth'])
