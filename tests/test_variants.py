"""The variants' numbers, and the test-sized network: tests only, yet loadable from a file."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

from inference.config import build_parser
from inference.weights_args import add_weights_arguments
from model import ENCODERS, VARIANTS, MTNet, build_mtnet, variant_of_file
from model.variants import CONVNEXT_WIDTHS, TEST_VARIANT, TEST_VARIANTS, MTNetSpec, spec_for
from tests.conftest import load_script
from tests.synthetic_videos import make_dataset
from training.config import build_parser as train_parser


def test_the_papers_numbers_are_the_defaults() -> None:
    paper = {"widths": (96, 192, 384, 768), "dim": 96, "num_heads": 4, "zone": 2}
    paper |= {"transformer_depth": 4, "decoder_depth": 4}
    assert paper["widths"] == CONVNEXT_WIDTHS
    for name, depths, rate in (
        ("convnext-tiny", (3, 3, 9, 3), 0.4),
        ("convnext-small", (3, 3, 27, 3), 0.3),
    ):
        assert asdict(VARIANTS[name]) == {"depths": depths, "drop_path_rate": rate, **paper}


def test_the_test_variant_is_no_choice_of_the_commands(capsys) -> None:
    assert ENCODERS == ("convnext-tiny", "convnext-small") == tuple(VARIANTS)
    assert TEST_VARIANT in TEST_VARIANTS and TEST_VARIANT not in VARIANTS
    weights = argparse.ArgumentParser()
    add_weights_arguments(weights, "export")
    for parser, argv in ((build_parser(), []), (train_parser(), ["--stage", "pre_train"]),
                         (weights, [])):  # fmt: skip
        parser.parse_args([*argv, "--encoder_name", "convnext-small"])
        with pytest.raises(SystemExit):
            parser.parse_args([*argv, "--encoder_name", TEST_VARIANT])
        assert f"invalid choice: '{TEST_VARIANT}'" in capsys.readouterr().err


def test_the_test_variant_is_the_same_code_smaller() -> None:
    spec = spec_for(TEST_VARIANT)
    assert isinstance(spec, MTNetSpec)
    net, full = MTNet(TEST_VARIANT), MTNet()
    assert net.backbone.widths == spec.widths
    assert {type(m) for m in net.modules()} == {type(m) for m in full.modules()}
    ours = {k.split(".")[0] for k in net.state_dict()}
    assert ours == {k.split(".")[0] for k in full.state_dict()}
    assert sum(p.numel() for p in net.parameters()) < sum(p.numel() for p in full.parameters()) / 20


def test_a_file_of_the_test_variant_loads_by_its_keys(tiny_weights: Path) -> None:
    assert variant_of_file(tiny_weights) == TEST_VARIANT
    model = build_mtnet(None, weights=tiny_weights, device="cpu")
    assert model.encoder_name == TEST_VARIANT and not model.training
    saved = MTNet(TEST_VARIANT)
    saved.load_state_dict(model.state_dict())
    x = torch.randn(1, 2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(saved.eval()(x, x), model(x, x))


def test_test_py_reads_the_variant_off_the_file(tiny_weights: Path, tmp_path: Path) -> None:
    """Without --encoder_name, test.py builds the file's variant and records it."""
    data = make_dataset(tmp_path / "SYN")
    args = ["--test_model", str(tiny_weights), "--test_dataset", str(data)]
    args += ["--output_dir", str(tmp_path), "--device", "cpu", "--num_workers", "0"]
    args += ["--test_length", "3", "--test_size", "64", "64"]
    assert load_script("test.py").main(args) == 0
    config = json.loads((tmp_path / "MTNet" / "UVOS" / "test_config.json").read_text())
    assert config["encoder_name"] is None
    assert config["provenance"]["encoder_name"] == TEST_VARIANT
    assert len(list((tmp_path / "MTNet" / "UVOS" / "SYN").glob("*/*.png"))) == 8
