"""The benchmarks' named modes run test.py with the settings they name."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import torch

from benchmarks.modes import MODES
from inference.config import parse_config
from tests.conftest import REPO


@pytest.mark.parametrize("name", list(MODES))
def test_mode_flags_round_trip_through_test_py(name: str, tmp_path) -> None:
    mode = MODES[name]
    cfg = parse_config(["--video", str(tmp_path / "clip.mp4"), *mode.test_args()])
    settings = (cfg.precision, cfg.runtime, cfg.channels_last, cfg.compile)
    assert settings == (mode.precision, mode.runtime, mode.channels_last, mode.compile)


def test_modes_that_run_on_each_device() -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    on_cpu = {name for name, mode in MODES.items() if mode.runs_on(cpu)}
    on_cuda = {name for name, mode in MODES.items() if mode.runs_on(cuda)}
    assert on_cpu == {
        "fp32", "bf16", "int8", "fp32+channels_last", "bf16+channels_last", "onnxruntime",
        "fp32+compile", "bf16+compile", "int8_static+compile",
    }  # fmt: skip
    assert on_cuda == {
        "fp32", "tf32", "bf16", "fp16", "fp32+channels_last", "bf16+channels_last",
        "fp16+channels_last", "fp32+compile", "bf16+compile", "fp16+compile",
    }  # fmt: skip


def test_precision_speed_refuses_modes_the_device_does_not_run(capsys) -> None:
    from benchmarks.precision_speed import parse_args

    with pytest.raises(SystemExit) as done:
        parse_args(["--modes", "bf16", "fp16", "tf32"])
    assert done.value.code == 2
    assert "--modes fp16 tf32: not run on cpu" in capsys.readouterr().err
    assert parse_args(["--modes", "bf16", "--no_compile"]).modes == ["fp32", "bf16"]


def test_model_speed_prints_the_network_and_the_matrix_product_rates() -> None:
    cmd = [sys.executable, "-m", "benchmarks.model_speed", "--size", "64", "64"]
    cmd += ["--clips", "2", "--repeats", "1", "--threads", "1"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300, check=True)
    assert re.search(r"2048\^3 fp32 matrix product runs at \d+ GFLOP/s", done.stdout)
    assert re.search(r"cpu   clip 2: .* frames/s .* GFLOP/frame, \d+ GFLOP/s", done.stdout)
