"""Remote checkpoints load through the same allow-list as local ones.

The scenario of issue 27: a payload checkpoint behind an ``https://`` or
``open-mmlab://`` address. Offline, the download is stood in for by the
file in ``$TORCH_HOME/hub/checkpoints/``, where torch's hub loader (and
ours) looks first. Every tool must refuse it with no marker file: ours,
mmseg's ``tools/test.py``, and training from it (``load_from``) or
resuming to it (a planted ``last_checkpoint``). mmseg's ``tools/train.py``
cannot read the warm-up configs here (their ``mmseg::`` base needs
``pkg_resources`` before the plugin is imported); ``tools/train.py`` is
the same runner with the plugin imported first.
"""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.runner import CheckpointLoader

from ..conftest import (REPO, SHELL_GLOBAL, TINY_MODEL, ShellPayload,
                        assert_refused_before_running, build_model,
                        synthetic_config)
from .test_warmup import WARMUP

MMSEG_TOOLS = osp.join(
    osp.dirname(__import__('mmseg').__file__), '.mim', 'tools')
# Each scheme, and the file name its download is cached under.
SCHEMES = {
    'https':
    ('https://download.example.com/ecotta/planted.pth', 'planted.pth'),
    'open-mmlab': ('open-mmlab://resnet18_v1c', 'resnet18_v1c-b5776b93.pth'),
}


def plant(tmp_path, scheme: str) -> dict:
    """A payload checkpoint in the torch hub cache, and its address."""
    url, name = SCHEMES[scheme]
    torch_home = tmp_path / 'torch'
    cached = torch_home / 'hub' / 'checkpoints' / name
    cached.parent.mkdir(parents=True)
    marker = str(tmp_path / 'pwned')
    torch.save(
        dict(
            meta=dict(note=ShellPayload(marker)),
            state_dict=build_model(TINY_MODEL).state_dict()), str(cached))
    return dict(
        url=url,
        cached=str(cached),
        marker=marker,
        env=dict(os.environ, TORCH_HOME=str(torch_home)))


def _assert_refused(result, payload: dict) -> None:
    assert result.returncode != 0, result.stderr[-2000:]
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith('mmseg_ecotta.safe_load.UnsafeFileError'), error
    assert repr(payload['cached']) in error and SHELL_GLOBAL in error
    assert not osp.exists(payload['marker'])


def _run(payload: dict, *cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *cmd],
                          cwd=REPO,
                          env=payload['env'],
                          capture_output=True,
                          text=True)


def _stream_options(acdc_root: str) -> list:
    return [
        '--cfg-options', 'test_dataloader.dataset.dataset_template.'
        f'data_root={acdc_root}', 'test_dataloader.num_workers=0'
    ]


@pytest.mark.parametrize('scheme', sorted(SCHEMES))
def test_loader_refuses_a_remote_payload(scheme, tmp_path, monkeypatch):
    payload = plant(tmp_path, scheme)
    monkeypatch.setenv('TORCH_HOME', payload['env']['TORCH_HOME'])
    assert_refused_before_running(
        lambda: CheckpointLoader.load_checkpoint(payload['url']),
        payload['cached'], payload['marker'])


# One scheme per tool: the loader test above covers both for all of them.
@pytest.mark.parametrize('tool, scheme',
                         [('tools/test_tta.py', 'https'),
                          (osp.join(MMSEG_TOOLS, 'test.py'), 'open-mmlab')])
def test_test_tools_refuse_a_remote_payload(tool, scheme, tmp_path, acdc_root):
    remote_payload = plant(tmp_path, scheme)
    result = _run(remote_payload, tool, synthetic_config('source'),
                  remote_payload['url'], '--work-dir', str(tmp_path / 'work'),
                  *_stream_options(acdc_root))
    _assert_refused(result, remote_payload)


def _train_options(cityscapes_root: str) -> list:
    options = {
        'train_dataloader.dataset.datasets.0.data_root': cityscapes_root,
        'train_dataloader.dataset.datasets.1.data_root': cityscapes_root,
        'val_dataloader.dataset.data_root': cityscapes_root,
        'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False,
        'val_dataloader.num_workers': 0,
        'val_dataloader.persistent_workers': False,
        # Short, should the payload be loaded and training go on.
        'train_cfg.max_iters': 1,
        'train_cfg.val_interval': 1,
    }
    return [f'{k}={v}' for k, v in options.items()]


@pytest.mark.parametrize('how, scheme', [('load_from', 'https'),
                                         ('last_checkpoint', 'open-mmlab')])
def test_train_refuses_a_remote_payload(how, scheme, tmp_path,
                                        cityscapes_root):
    remote_payload = plant(tmp_path, scheme)
    work_dir = tmp_path / 'work'
    options = _train_options(cityscapes_root)
    extra = []
    if how == 'load_from':
        options.append(f"load_from={remote_payload['url']}")
    else:
        # A planted last_checkpoint naming the address, then --resume.
        work_dir.mkdir()
        (work_dir / 'last_checkpoint').write_text(remote_payload['url'])
        options.append('load_from=None')
        extra = ['--resume']
    result = _run(remote_payload, 'tools/train.py', WARMUP, '--work-dir',
                  str(work_dir), *extra, '--cfg-options', *options)
    _assert_refused(result, remote_payload)


def test_publish_refuses_a_remote_payload(tmp_path):
    remote_payload = plant(tmp_path, 'https')
    result = _run(remote_payload, 'tools/publish_checkpoint.py',
                  remote_payload['url'], str(tmp_path / 'out.pth'))
    _assert_refused(result, remote_payload)
    assert not osp.exists(tmp_path / 'out.pth')
