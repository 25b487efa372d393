"""Keep glibc's heap from fragmenting over a long stream.

Measured on the tiny synthetic stream (README, "Memory over long
streams"): ``tools/test_tta.py`` grew by about 260 KiB per image, and the
growth vanished with ``MALLOC_MMAP_THRESHOLD_=131072``: allocator
fragmentation, not a Python leak. glibc serves blocks of at least
``M_MMAP_THRESHOLD`` bytes with their own ``mmap``, returned to the system
on ``free``; smaller ones come from the heap, which can only shrink from
its top. The threshold starts at 128 KiB but is *dynamic*: every freed
mmapped block raises it to that block's size (up to 32 MiB). After the
first large free, activation- and image-sized blocks (hundreds of KiB to
a few MiB, freed every image) move into the heap, where the small
long-lived objects each image leaves (metric records, log entries) land
between them and pin the heap: RSS creeps up image after image.

Setting the threshold explicitly, as ``mallopt(M_MMAP_THRESHOLD, ...)``
does, also turns the dynamic adjustment off: large blocks stay mmapped
and their memory goes back to the system when freed. The cost is an
``mmap``/``munmap`` pair (and fresh zeroed pages) per large allocation;
see the README's soak numbers for the time per image with and without.
"""
import ctypes
import ctypes.util
import os

# mallopt's parameter number for the mmap threshold (glibc <malloc.h>).
M_MMAP_THRESHOLD = -3
# glibc's own initial threshold (DEFAULT_MMAP_THRESHOLD_MIN), made fixed.
MMAP_THRESHOLD_BYTES = 128 * 1024
# The environment variable glibc reads at start-up for the same setting.
MMAP_THRESHOLD_ENV = 'MALLOC_MMAP_THRESHOLD_'


def fix_mmap_threshold(threshold: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Fix glibc's mmap threshold for this process (and later forks).

    Does nothing where the C library has no ``mallopt`` (not glibc, e.g.
    macOS or musl) or where ``MALLOC_MMAP_THRESHOLD_`` is set: the user's
    own setting stands.

    Args:
        threshold (int): Blocks of at least this many bytes get their own
            mmap. Defaults to 128 KiB.

    Returns:
        bool: Whether the threshold was set.
    """
    if not isinstance(threshold, int) or threshold <= 0:
        raise ValueError(f'threshold={threshold!r}: give a positive number '
                         f'of bytes, e.g. {MMAP_THRESHOLD_BYTES}')
    if MMAP_THRESHOLD_ENV in os.environ:
        return False
    name = ctypes.util.find_library('c')
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, TypeError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return mallopt(M_MMAP_THRESHOLD, threshold) == 1
