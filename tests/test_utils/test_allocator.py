"""glibc's mmap threshold, fixed for flat memory over long streams."""
import ctypes.util
import platform

import pytest

from mmseg_ecotta.utils import fix_mmap_threshold
from mmseg_ecotta.utils.allocator import MMAP_THRESHOLD_ENV


@pytest.mark.skipif(
    platform.libc_ver()[0] != 'glibc' or not ctypes.util.find_library('c'),
    reason='glibc only')
def test_threshold_is_set_on_glibc():
    assert fix_mmap_threshold()


def test_the_users_environment_variable_wins(monkeypatch):
    monkeypatch.setenv(MMAP_THRESHOLD_ENV, '65536')
    assert not fix_mmap_threshold()


def test_threshold_must_be_positive():
    with pytest.raises(ValueError, match='threshold=0'):
        fix_mmap_threshold(0)
