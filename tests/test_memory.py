"""The allocator setting used by the scripts."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO

PROBE = """
import ctypes, torch
from util.memory import retain_freed_memory
libc = ctypes.CDLL("libc.so.6")
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                 "uordblks", "fordblks", "keepcost")]
libc.mallinfo2.restype = Info
print(retain_freed_memory())
x = torch.empty(64 * 2**20, dtype=torch.uint8)  # 64 MiB: an mmap block by default
print(libc.mallinfo2().hblkhd >= 64 * 2**20)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_large_blocks_no_longer_use_mmap() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["True", "False"]
    baseline = PROBE.replace("print(retain_freed_memory())", "print(True)")
    out = subprocess.run(
        [sys.executable, "-c", baseline], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["True", "True"]  # without the setting the 64 MiB block is mmap'd
