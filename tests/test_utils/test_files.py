"""One atomic writer for results and states; torch-file checks."""
import json
import os

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
