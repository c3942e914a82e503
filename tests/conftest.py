"""Shared test fixtures: paths to ``../shared`` (skipped when absent) and small helpers."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DAVIS_VAL = SHARED / "data" / "DAVIS16" / "val"

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
