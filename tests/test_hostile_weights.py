"""Weights files whose tensors have the wrong type, or whose keys are not names, are refused.

A tensor of integers where the network has a floating-point parameter would load as
truncated values (and test.py would write masks from a damaged network); a key that is not
a string ended in an ``AttributeError`` traceback. Both are now one line naming the file.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from model import MTNet, build_mtnet
from model.weights import load_weights, release_state_dict
from util.checkpoint import CheckpointError

KEY = "module.fpn.toplayer.weight"


@pytest.fixture(scope="module")
def state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return release_state_dict(MTNet())


def _save(path: Path, network: dict) -> Path:
    torch.save({"it": 1, "network": network}, path)
    return path


def test_an_integer_tensor_for_a_float_parameter_is_refused(tmp_path, state) -> None:
    bad = {**state, KEY: (state[KEY] * 1000).to(torch.int64)}
    path = _save(tmp_path / "int.pth", bad)
    pattern = (
        rf"^{path}: tensor fpn\.toplayer\.weight is torch\.int64, the network's is torch\.float32"
    )
    with pytest.raises(CheckpointError, match=pattern):
        load_weights(MTNet(), path)
    with pytest.raises(CheckpointError, match=pattern):
        build_mtnet(weights=path, device="cpu")


def test_a_half_precision_file_still_loads(tmp_path, state) -> None:
    path = _save(tmp_path / "half.pth", {**state, KEY: state[KEY].half()})
    model = MTNet()
    load_weights(model, path)
    assert torch.equal(model.fpn.toplayer.weight, state[KEY].half().float())


def test_a_float_tensor_for_an_integer_buffer_is_refused(tmp_path, state) -> None:
    key = next(k for k, v in state.items() if not v.is_floating_point())
    path = _save(tmp_path / "buf.pth", {**state, key: state[key].float() + 0.5})
    with pytest.raises(CheckpointError, match=r"is torch\.float32, the network's is torch\.int64"):
        load_weights(MTNet(), path)


@pytest.mark.parametrize("key", [3, ("a", "b"), None])
def test_keys_that_are_not_names_are_refused(tmp_path, state, key) -> None:
    path = _save(tmp_path / "keys.pth", {**state, key: torch.zeros(1)})
    with pytest.raises(
        CheckpointError,
        match=rf"^{path}: key {re.escape(repr(key))} is of type \w+; expected tensor names",
    ):
        load_weights(MTNet(), path)
