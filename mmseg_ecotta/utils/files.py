"""Atomic file writes, and errors that name a broken torch file.

:func:`atomic_write` is the one writer of the package's result, state and
exported files; :func:`check_torch_file` turns the raw
``EOFError``/``RuntimeError`` that ``torch.load`` gives for an empty,
cut-short or non-PyTorch file into an error naming the file and the fix.
"""
import glob
import os
import os.path as osp
import tempfile
import zipfile
from typing import IO, Callable, List

# The first bytes of what ``torch.save`` writes: a zip archive (torch >=
# 1.6) or, in the legacy format, a pickle (protocol 2+ opcode).
ZIP_MAGIC = b'PK\x03\x04'
PICKLE_MAGIC = b'\x80'


def atomic_write(path: str,
                 write: Callable[[IO], None],
                 binary: bool = True) -> None:
    """Write ``path`` so that readers see the old or the new file, whole.

    ``write`` fills a temporary file in the same folder (unique name
    ``.<name>.<random>.tmp``, so two runs in one folder never share it);
    the file is flushed and fsynced, then renamed over ``path`` with
    ``os.replace`` (atomic on one file system), and the folder is fsynced
    so the rename itself survives a power cut. If anything fails (or the
    process is interrupted), the temporary file is removed and ``path``
    is untouched. A symlink at ``path`` is replaced by the file, never
    followed: a link planted in a shared work dir cannot make the run
    overwrite its target. An ``OSError`` (a full disk) names ``path``.

    Args:
        path (str): The file to (re)write.
        write (Callable[[IO], None]): Writes the content to the open file.
        binary (bool): Open the temporary file in binary mode. Defaults to
            True.

    Raises:
        OSError: Writing failed (e.g. ``ENOSPC``); the message names
            ``path``.
    """
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f'.{osp.basename(path)}.', suffix='.tmp', dir=folder)
    try:
        with os.fdopen(fd, 'wb' if binary else 'w') as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if osp.exists(tmp):
            os.remove(tmp)
        if isinstance(e, OSError) and e.filename is None:
            # Errors from write() and fsync() carry no file name.
            raise OSError(e.errno, e.strerror, path) from e
        raise
    # Persist the rename itself (POSIX; directories cannot be opened on
    # Windows, where os.replace is already durable enough).
    if hasattr(os, 'O_DIRECTORY'):
        dir_fd = os.open(folder, os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def check_torch_file(path: str, what: str, fix: str) -> None:
    """Raise ``ValueError`` naming ``path`` if it cannot be a torch file.

    Cheap checks that need no unpickling: the file is not empty, a zip
    archive (what ``torch.save`` writes) is complete (its central
    directory, at the end, is readable), and anything else at least starts
    like a pickle. A cut-short download or copy, an empty file and a text
    or HTML file saved under the name are caught here.

    Args:
        path (str): The file, which exists.
        what (str): What it should be, e.g. ``'checkpoint'``.
        fix (str): How to get a good one, e.g. ``'download it again'``.
    """
    size = osp.getsize(path)
    if size == 0:
        raise ValueError(f'{what} {path!r} is empty (0 bytes); {fix}')
    with open(path, 'rb') as f:
        head = f.read(len(ZIP_MAGIC))
    if head == ZIP_MAGIC:
        if not zipfile.is_zipfile(path):
            raise ValueError(
                f'{what} {path!r} is truncated ({size} bytes, its zip '
                f'directory is missing: an interrupted copy or download); '
                f'{fix}')
    elif not head.startswith(PICKLE_MAGIC):
        raise ValueError(
            f'{what} {path!r} is not a PyTorch file (it starts with '
            f'{head!r}, e.g. text or a saved web page); {fix}')


def remove_stale_temporaries(path: str) -> List[str]:
    """Delete the temporary files interrupted writes of ``path`` left.

    Only names of :func:`atomic_write`'s own pattern (``.<name>.*.tmp``
    beside ``path``, e.g. ``.tta_state.pth.x1y2.tmp``) are touched.

    Returns:
        list[str]: The files removed.
    """
    folder, name = osp.split(osp.abspath(path))
    stale = glob.glob(
        osp.join(glob.escape(folder), f'.{glob.escape(name)}.*.tmp'))
    for tmp in stale:
        os.remove(tmp)
    return stale
