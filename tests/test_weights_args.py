"""The weights options of the module commands (inference.weights_args)."""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import pytest
import torch

from inference.config import TestConfig as RunConfig  # not a test class
from inference.session import build_model, read_test_model, weights_id
from inference.weights_args import (
    RANDOM_WEIGHTS,
    add_weights_arguments,
    check_weights_arguments,
    load_cli_weights,
)
from model.weights import save_model_file
from tests.conftest import tiny_mtnet
from util.errors import InputError


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_weights_arguments(p, "export")
    return p.parse_args(argv)


def same_state(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_weights_are_required_and_exclusive(capsys) -> None:
    with pytest.raises(InputError, match="^--test_model: give the weights file to export "):
        check_weights_arguments(parse([]), "export")
    with pytest.raises(SystemExit):
        parse(["--test_model", "w.pth", "--random_weights"])
    assert "not allowed with argument" in capsys.readouterr().err


def test_random_weights_are_test_pys_untrained_network() -> None:
    # a calibration made with --random_weights must match test.py run without weights
    weights = load_cli_weights(parse(["--random_weights"]))
    untrained = build_model(RunConfig(test_model=None), torch.device("cpu"))
    assert same_state(weights.model, untrained)
    assert (weights.path, weights.sha256) == (None, None)
    assert (
        weights.description
        == RANDOM_WEIGHTS
        == weights_id(read_test_model(RunConfig(test_model=None)))
    )


def test_a_weights_file_is_loaded_and_hashed(tmp_path: Path) -> None:
    source = tiny_mtnet(3)  # its variant read off the file
    path = tmp_path / "w.pth"
    save_model_file(path, source)
    weights = load_cli_weights(parse(["--test_model", str(path)]))
    assert same_state(weights.model, source) and not weights.model.training
    assert weights.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() == weights.description
    assert weights.path == str(path)
