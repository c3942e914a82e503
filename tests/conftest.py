"""Shared test fixtures: paths to ``../shared`` (skipped when absent) and small helpers."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

from benchmarks.common import DAVIS_VAL, REPO, SHARED

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# One intra-op thread: tests use tiny inputs, and on a small shared CPU extra threads
# mostly wait on each other (2 threads were measured up to 17x slower under load).
torch.set_num_threads(1)


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent (the shared spec and data live beside the repo)")
    return SHARED


@pytest.fixture
def davis_val() -> Path:
    if not DAVIS_VAL.is_dir():
        pytest.skip(f"{DAVIS_VAL} is absent (shared DAVIS-2016 validation videos)")
    return DAVIS_VAL


def load_script(filename: str) -> ModuleType:
    """A top-level script (``test.py``, ``visualize.py``) loaded as a module.

    ``import test`` would find the standard library's package, hence loading by path.
    """
    name = f"mtnet_{Path(filename).stem}_script"
    spec = importlib.util.spec_from_file_location(name, REPO / filename)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
