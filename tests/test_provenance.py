"""test.py records what made its masks and refuses to mix two models in one folder."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from model.weights import save_model_file
from tests.conftest import tiny_mtnet
from tests.synthetic_videos import make_dataset
from util.image import read_grey


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("data") / "SYN")


def _other_weights(folder: Path) -> Path:
    """Weights other than ``tiny_weights``: the test network of another seed."""
    path = folder / "w1.pth"
    save_model_file(path, tiny_mtnet(1))
    return path


def _args(weights: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--test_model", str(weights), "--test_dataset", str(data), "--output_dir", str(out),
        "--device", "cpu", "--num_workers", "0", "--test_length", "3", "--test_size", "64", "64",
        *extra,
    ]  # fmt: skip


def test_config_records_weights_hash_and_mode(script, data, tiny_weights, tmp_path):
    weights = tiny_weights
    assert script.main(_args(weights, data, tmp_path)) == 0
    config = json.loads((tmp_path / "MTNet" / "UVOS" / "test_config.json").read_text())
    made_by = config["provenance"]
    assert made_by["weights"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert (made_by["precision"], made_by["runtime"], made_by["device"]) == ("fp32", "torch", "cpu")
    assert "AVX" in made_by["cpu"] or "vector extensions unknown" in made_by["cpu"]
    assert made_by["test_size"] == [64, 64] and config["test_model"] == str(weights)


def test_skip_existing_refuses_other_weights_or_mode(
    script, data, tiny_weights, tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(torch, "compile", lambda model, **kwargs: model)  # never compiles here
    first, second = tiny_weights, _other_weights(tmp_path)
    assert script.main(_args(first, data, tmp_path)) == 0
    (tmp_path / "MTNet" / "UVOS" / "SYN" / "a" / "00004.png").unlink()  # an interrupted run
    for args in (
        _args(second, data, tmp_path, "--skip_existing"),
        _args(first, data, tmp_path, "--skip_existing", "--precision", "int8"),
        _args(first, data, tmp_path, "--skip_existing", "--compile"),
    ):
        capsys.readouterr()
        assert script.main(args) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "test_config.json: the masks there were begun with" in err[0]
    assert not (tmp_path / "MTNet" / "UVOS" / "SYN" / "a" / "00004.png").exists()
    assert script.main(_args(first, data, tmp_path, "--skip_existing")) == 0  # same: completes
    assert (tmp_path / "MTNet" / "UVOS" / "SYN" / "a" / "00004.png").is_file()


def test_int8_with_compile_is_refused_in_one_line(script, data, tiny_weights, tmp_path, capsys):
    args = _args(tiny_weights, data, tmp_path, "--precision", "int8", "--compile")
    assert script.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--compile with --precision int8" in err[0]
    assert not list(tmp_path.rglob("*.png"))


def test_int8_run_writes_every_mask_and_leaves_fp32_untouched(script, data, tiny_weights, tmp_path):
    weights = tiny_weights
    assert script.main(_args(weights, data, tmp_path / "fp32")) == 0
    assert script.main(_args(weights, data, tmp_path / "int8", "--precision", "int8")) == 0
    assert script.main(_args(weights, data, tmp_path / "again")) == 0
    for path in sorted((tmp_path / "fp32").rglob("*.png")):
        rel = path.relative_to(tmp_path / "fp32")
        assert np.array_equal(read_grey(path), read_grey(tmp_path / "again" / rel))
        assert (tmp_path / "int8" / rel).is_file()
    config = json.loads((tmp_path / "int8" / "MTNet" / "UVOS" / "test_config.json").read_text())
    assert config["provenance"]["precision"] == "int8"


def test_skip_existing_redoes_videos_left_by_a_run_of_other_weights(
    script, data, tiny_weights, tmp_path
):
    """A run of other weights that rewrote only video a (a subset, or a run stopped there)
    leaves the folder's record naming its weights beside b's masks of the first weights:
    completing with --skip_existing redoes b, whose stamp names the first weights."""
    first, second = tiny_weights, _other_weights(tmp_path)
    out = tmp_path / "out"
    assert script.main(_args(first, data, out)) == 0
    assert script.main(_args(second, data, out, "--videos", "a")) == 0
    stamp = json.loads((out / "MTNet" / "UVOS" / "SYN" / "b" / ".done.json").read_text())
    assert stamp["masks"]["weights"] == hashlib.sha256(first.read_bytes()).hexdigest()
    assert script.main(_args(second, data, out, "--skip_existing")) == 0
    assert script.main(_args(second, data, tmp_path / "fresh")) == 0
    masks = sorted((tmp_path / "fresh").rglob("*.png"))
    assert len(masks) == 8
    for path in masks:
        rel = path.relative_to(tmp_path / "fresh")
        assert np.array_equal(read_grey(out / rel), read_grey(path)), rel
    stamp = json.loads((out / "MTNet" / "UVOS" / "SYN" / "b" / ".done.json").read_text())
    assert stamp["masks"]["weights"] == hashlib.sha256(second.read_bytes()).hexdigest()
