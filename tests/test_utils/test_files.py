"""One atomic writer for results and states; torch-file checks."""
import errno
import json
import os

import numpy as np
import pytest

from mmseg_ecotta.evaluation import write_json_atomic
from mmseg_ecotta.utils import atomic_write


def test_results_json_is_fsynced_under_a_unique_name(tmp_path, monkeypatch):
    path = str(tmp_path / 'tta_results.json')
    synced, replaced = [], []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        synced.append(fd)
        real_fsync(fd)

    def replace(src, dst):
        replaced.append(os.path.basename(src))
        real_replace(src, dst)

    monkeypatch.setattr(os, 'fsync', fsync)
    monkeypatch.setattr(os, 'replace', replace)
    write_json_atomic(dict(a=1), path)
    write_json_atomic(dict(a=2), path)
    with open(path) as f:
        assert json.load(f) == dict(a=2)
    assert len(synced) >= 2  # the file (and its folder) each time
    # Two runs in one work dir never write the same temporary file.
    assert len(set(replaced)) == 2
    assert all(
        n.startswith('.tta_results.json.') and n.endswith('.tmp')
        for n in replaced)
    assert os.listdir(tmp_path) == ['tta_results.json']


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = str(tmp_path / 'out.json')
    write_json_atomic(dict(a=1), path)

    def fail(f):
        f.write('{"a": ')
        raise KeyboardInterrupt  # a kill in the middle of writing

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, fail, binary=False)
    with open(path) as f:
        assert json.load(f) == dict(a=1)
    assert os.listdir(tmp_path) == ['out.json']


def test_non_finite_numbers_never_fail_the_results_write(tmp_path):
    # lr=inf once killed a run at its first results write (issue 27).
    path = str(tmp_path / 'tta_results.json')
    write_json_atomic(
        dict(
            method_cfg=dict(lr=float('inf')),
            low=-float('inf'),
            iou=[float('nan'), np.float32('nan'), 1.5],
            loss=np.float64('inf')), path)
    with open(path) as f:
        text = f.read()
    assert json.loads(text) == dict(
        method_cfg=dict(lr='inf'),
        low='-inf',
        iou=[None, None, 1.5],
        loss='inf')
    assert 'Infinity' not in text and 'NaN' not in text  # strict JSON


def test_a_full_disk_names_the_file(tmp_path):
    path = str(tmp_path / 'tta_state.pth')

    def full(f):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(OSError, match='No space left on device') as info:
        atomic_write(path, full)
    assert info.value.errno == errno.ENOSPC
    assert path in str(info.value)
    assert os.listdir(tmp_path) == []


def test_a_planted_symlink_is_replaced_not_followed(tmp_path):
    target = tmp_path / 'victim.txt'
    target.write_text('precious')
    work_dir = tmp_path / 'work'
    work_dir.mkdir()
    link = work_dir / 'tta_results.json'
    link.symlink_to(target)
    write_json_atomic(dict(a=1), str(link))
    assert target.read_text() == 'precious'
    assert not link.is_symlink() and json.loads(link.read_text()) == dict(a=1)
