"""Argument types of the Python API, and frames too small for the flow method.

``clip_length=2.5`` turned the stream into one clip; ``test_size=(64,)`` or
``("64", "64")`` ended in a bare ``TypeError``; an empty frame ended in a torch error; a
frame smaller than DIS's minimum ended in an OpenCV traceback. Each is one line now.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inference import MTNetPredictor
from model import build_mtnet
from util.errors import InputError
from util.flow import DIS_MIN_SIDES, FlowError, compute_flows, flow_picture, make_estimator


@pytest.fixture(scope="module")
def model():
    return build_mtnet("convnext-tiny", device="cpu", seed=0)


@pytest.mark.parametrize("value", [2.5, True, "3", 0, -1, None, np.float64(3.0)])
def test_clip_length_must_be_a_positive_int(model, value) -> None:
    with pytest.raises(
        InputError, match=rf"^clip_length={re.escape(repr(value))}: expected a positive int"
    ):
        MTNetPredictor(model, test_size=(64, 64), clip_length=value)


@pytest.mark.parametrize(
    "value", [(64,), ("64", "64"), (64.0, 64), (True, 64), 64, "64x64", (64, 64, 64), None]
)
def test_test_size_must_be_a_pair_of_ints(model, value) -> None:
    with pytest.raises(InputError, match=r"^test_size=.*: expected a pair \(H, W\) of ints"):
        MTNetPredictor(model, test_size=value, clip_length=2)


def test_numpy_integers_are_accepted(model) -> None:
    predictor = MTNetPredictor(
        model, test_size=(np.int64(64), np.int32(64)), clip_length=np.int64(2)
    )
    assert predictor.test_size == (64, 64) and predictor.clip_length == 2
    assert type(predictor.clip_length) is int
    assert MTNetPredictor(model, test_size=[64, 128], clip_length=2).test_size == (64, 128)


@pytest.mark.parametrize("value", ["convnext-huge", 3, ""])
def test_build_mtnet_variant_is_checked(value) -> None:
    with pytest.raises(InputError, match=r"^variant=.*: expected one of convnext-tiny"):
        build_mtnet(value, device="cpu")


@pytest.mark.parametrize("value", [2.5, "1", True])
def test_build_mtnet_seed_must_be_an_int(value) -> None:
    with pytest.raises(InputError, match=rf"^seed={re.escape(repr(value))}: expected an int"):
        build_mtnet(device="cpu", seed=value)


def test_an_empty_frame_is_one_line(model) -> None:
    predictor = MTNetPredictor(model, test_size=(64, 64), clip_length=2)
    frames = [np.zeros((0, 0, 3), np.uint8), np.zeros((0, 0, 3), np.uint8)]
    with pytest.raises(InputError, match=r"frame 0: an empty image \(0x0\)"):
        list(predictor.segment(frames, frames))
    with pytest.raises(InputError, match=r"frame 0: an empty image \(0x0\)"):
        list(predictor.segment(frames))


# ---------------------------------------------------------------------------------------
# Frames smaller than the flow method's minimum


def test_dis_minimum_is_what_opencv_accepts() -> None:
    dis = make_estimator("dis")
    short, long = DIS_MIN_SIDES
    ok = np.zeros((short, long, 3), np.uint8)
    assert dis(ok, ok).shape == (short, long, 2)
    for h, w in [(short - 1, long), (long - 1, long - 1), (long, short - 1)]:
        small = np.zeros((h, w, 3), np.uint8)
        with pytest.raises(FlowError, match=rf"frame a is {w}x{h} pixels; DIS flow needs"):
            flow_picture(dis, small, small, "frame a", "frame b")


def test_small_frames_in_util_flow_name_the_file(tmp_path: Path) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(2):
        Image.new("RGB", (10, 6)).save(frames / f"{i:05d}.png")
    with pytest.raises(FlowError, match=rf"{frames / '00000.png'} is 10x6 pixels; DIS flow needs"):
        compute_flows(frames, tmp_path / "flow", progress=False)


def test_small_frames_in_the_predictor_are_one_line(model) -> None:
    predictor = MTNetPredictor(model, test_size=(64, 64), clip_length=2)
    frames = [np.zeros((5, 5, 3), np.uint8)] * 2
    with pytest.raises(FlowError, match=r"video: frame 0 is 5x5 pixels; DIS flow needs"):
        list(predictor.segment(frames))
