"""The benchmarks' named modes run test.py with the settings they name."""

from __future__ import annotations

import pytest

from benchmarks.modes import MODES
from inference.config import parse_config


@pytest.mark.parametrize("name", list(MODES))
def test_mode_flags_round_trip_through_test_py(name: str, tmp_path) -> None:
    mode = MODES[name]
    cfg = parse_config(["--video", str(tmp_path / "clip.mp4"), *mode.test_args()])
    settings = (cfg.precision, cfg.runtime, cfg.channels_last, cfg.compile)
    assert settings == (mode.precision, mode.runtime, mode.channels_last, mode.compile)
