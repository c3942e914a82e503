"""Shared test fixtures: paths to ``../shared`` (skipped when absent), the test-sized
network and its weights file, and small helpers.

The full network is built only where its numbers are the point (the golden output, the
release's keys, checkpoint formats, the agreement of the speed modes, memory figures);
every test of the pipeline runs the test variant (``model.variants.TEST_VARIANTS``), the
same code at a fraction of the cost.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

from benchmarks.common import DAVIS_VAL, REPO, SHARED
from model import MTNet, build_mtnet
from model.variants import TEST_VARIANT
from model.weights import save_model_file

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# One intra-op thread: tests use tiny inputs, and on a small shared CPU extra threads
# mostly wait on each other (2 threads were measured up to 17x slower under load).
torch.set_num_threads(1)


def require_shared(path: Path) -> Path:
    """``path`` under ``SHARED``; the test is skipped when it is absent (the one skip rule
    for the shared spec and data)."""
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared spec and data live beside the repo)")
    return path


@pytest.fixture
def shared_dir() -> Path:
    return require_shared(SHARED)


@pytest.fixture
def davis_val() -> Path:
    """The shared DAVIS-2016 validation videos: ``frame/``, ``flow/``, ``mask/``."""
    return require_shared(DAVIS_VAL)


def tiny_mtnet(seed: int = 0) -> MTNet:
    """The test-sized network, randomly initialised with ``seed``, in eval mode."""
    return build_mtnet(TEST_VARIANT, device="cpu", seed=seed)


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model file of ``tiny_mtnet(0)``, written once per session; read-only for tests."""
    path = tmp_path_factory.mktemp("weights") / "tiny.pth"
    save_model_file(path, tiny_mtnet(0))
    return path


@pytest.fixture
def train_py_test_sized(monkeypatch: pytest.MonkeyPatch) -> None:
    """train.py, called in this process, trains the test-sized network."""
    from tests.train_helpers import config_of_test_network
    from training import config

    monkeypatch.setattr(config, "config_from_args", config_of_test_network)


def load_script(filename: str) -> ModuleType:
    """A top-level script (``test.py``, ``visualize.py``) loaded as a module.

    ``import test`` would find the standard library's package, hence loading by path.
    """
    name = f"mtnet_{Path(filename).stem}_script"
    spec = importlib.util.spec_from_file_location(name, REPO / filename)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def script() -> ModuleType:
    """test.py loaded as a module (files that test another script define their own)."""
    return load_script("test.py")
