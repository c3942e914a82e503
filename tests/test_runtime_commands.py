"""The module commands of the runtime keep their names: ``python -m inference.export_onnx``
and ``python -m inference.int8_static`` run their library's command, and a flag's mistake
ends as one line with exit status 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.parametrize("command", ["export_onnx", "int8_static"])
def test_module_command_runs_and_reports_a_bad_flag_in_one_line(command: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", f"inference.{command}", "--random_weights"]
        + ["--test_size", "96", "128"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2
    expected = "--test_size 96 128: expected multiples of 64 (the paper uses --test_size 512 512)"
    assert done.stderr == f"{command}: error: {expected}\n"
