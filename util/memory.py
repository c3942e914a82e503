"""Process-wide allocator settings for the command-line scripts.

glibc's malloc serves every block above 32 MiB with a fresh ``mmap`` and returns it to the
kernel on ``free``. The network's activations at 512x512 are such blocks (a ConvNeXt MLP
hidden map of 3 frames and 3 flows is 150 MB), so each layer would pay, in system time,
for the page faults and the zeroing of new pages, again on every clip. Keeping freed memory
for reuse instead avoids that work (``benchmarks/model_speed.py --glibc_default`` shows
the difference); this is what jemalloc or tcmalloc would give, without a preload.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_KEEP_BYTES = 2**31 - 1  # mallopt takes an int: trim only when 2 GiB at the top are free


def retain_freed_memory() -> bool:
    """Make glibc keep freed memory for reuse (no per-block mmap, rare trimming).

    Call once at the start of a script, before large tensors exist; settings apply to later
    allocations and are inherited by forked DataLoader workers. Peak memory stays about the
    same (freed blocks are reused). Returns False, doing nothing, where the C library is not
    glibc (macOS, Windows, musl).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
        gnu_version = libc.gnu_get_libc_version
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    gnu_version.restype = ctypes.c_char_p
    ok = bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, _KEEP_BYTES))
    log.debug("glibc %s: retain freed memory: %s", gnu_version().decode(), ok)
    return ok
