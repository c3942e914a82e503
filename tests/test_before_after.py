"""The before/after picture of a training run: the untrained network of the run's variant
and seed beside the trained one, written as one image; mistakes in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import inference.before_after as before_after_module
from inference.before_after import before_after, main
from tests.train_helpers import square_video
from util.image import read_rgb_array


@pytest.fixture
def split(tmp_path: Path) -> Path:
    square_video(tmp_path / "val", "v1", 4, size=(96, 80))
    return tmp_path / "val"


def _networks_used(monkeypatch) -> list:
    used = []
    real = before_after_module.masks_of

    def record(model, frames, flows, size):
        used.append(model)
        return real(model, frames, flows, size)

    monkeypatch.setattr(before_after_module, "masks_of", record)
    return used


@pytest.mark.parametrize("seed", [0, 2023])
def test_the_picture_holds_the_untrained_and_the_trained_masks(
    split: Path, tiny_weights: Path, tmp_path: Path, monkeypatch, seed: int
) -> None:
    used = _networks_used(monkeypatch)
    out = tmp_path / "pic.png"
    argv = ["--video", str(split), "--name", "v1", "--frame", "2", "--model", str(tiny_weights)]
    assert main([*argv, "--size", "64", "--seed", str(seed), "--out", str(out)]) == 0
    picture = read_rgb_array(out)
    assert picture.shape[1] == 3 * 3 * 96  # before, after, ground truth: a 96-px frame 3x
    assert np.array_equal(picture, before_after(split, "v1", 2, tiny_weights, 64, seed))
    before, after = used[0], used[1]  # the first run's networks
    assert before.encoder_name == after.encoder_name == "mtnet-test"  # the weights' variant
    same = all(
        np.array_equal(a.numpy(), b.numpy())
        for a, b in zip(before.state_dict().values(), after.state_dict().values(), strict=True)
    )
    assert same == (seed == 0)  # the weights file holds the seed-0 network


def test_a_frame_beyond_the_video_is_one_line(split: Path, tiny_weights: Path, capsys) -> None:
    argv = ["--video", str(split), "--name", "v1", "--frame", "9", "--model", str(tiny_weights)]
    assert main([*argv, "--out", "x.png"]) == 2
    assert capsys.readouterr().err == "before_after: error: --frame 9: video v1 has 4 frames\n"
