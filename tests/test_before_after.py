"""The before/after picture of a training run: the untrained network of the run's variant
and seed beside the trained one, written as one image; mistakes in one line."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

import inference.before_after as before_after_module
from inference import MTNetPredictor
from inference.before_after import before_after, main
from inference.visualize import GT_COLOUR, PRED_COLOUR
from model import build_mtnet
from tests.train_helpers import square_video
from util.image import read_rgb_array


@pytest.fixture
def split(tmp_path: Path) -> Path:
    square_video(tmp_path / "val", "v1", 4, size=(96, 80))
    return tmp_path / "val"


def _networks_used(monkeypatch, masks: list | None = None) -> list:
    """The networks ``masks_of`` is called with, in order; their masks go to ``masks``."""
    used = []
    real = before_after_module.masks_of

    def record(model, frames, flows, size):
        used.append(model)
        made = real(model, frames, flows, size)
        if masks is not None:
            masks.append(made)
        return made

    monkeypatch.setattr(before_after_module, "masks_of", record)
    return used


LABEL_ROWS = 40  # the panel's label is drawn above this row
EDGE = 3  # pixels: the contour (2 px wide) of a mask's boundary, and of the picture's border


def _check_panel(panel: np.ndarray, frame: np.ndarray, mask: np.ndarray, colour, what: str):
    """``panel`` is ``frame`` tinted by ``mask`` ({0, 255}) at half strength in ``colour``,
    with the mask's contour in ``colour`` and a white label, checked pixel by pixel away
    from the contour and the label."""
    assert panel.shape == frame.shape, what
    on = mask > 127
    kernel = np.ones((2 * EDGE - 1, 2 * EDGE - 1), np.uint8)
    band = cv2.dilate(on.astype(np.uint8), kernel) != cv2.erode(on.astype(np.uint8), kernel)
    away = ~band
    away[:LABEL_ROWS] = False
    away[-EDGE:] = away[:, :EDGE] = away[:, -EDGE:] = False
    tinted = (frame.astype(np.int32) + np.array(colour)) // 2  # 0.5 * frame + 0.5 * colour
    expected = np.where(on[..., None], tinted, frame).astype(np.uint8)
    wrong = np.argwhere((panel != expected).any(-1) & away)
    assert not len(wrong), f"{what}: {len(wrong)} pixels differ, first at (y, x) {wrong[0]}"
    assert away.mean() > 0.5, what  # most of the panel was checked
    if on.any() and not on.all():
        assert (panel[band] == colour).all(-1).any(), f"{what}: no contour in {colour}"
    label = panel[5:LABEL_ROWS, 8:128]  # the text starts at x = 8
    assert (label == 255).all(-1).any(), f"{what}: no white label"


@pytest.mark.parametrize("seed", [0, 2023])
def test_the_picture_holds_the_untrained_and_the_trained_masks(
    split: Path, tiny_weights: Path, tmp_path: Path, monkeypatch, seed: int
) -> None:
    masks = []
    used = _networks_used(monkeypatch, masks)
    out = tmp_path / "pic.png"
    argv = ["--video", str(split), "--name", "v1", "--frame", "2", "--model", str(tiny_weights)]
    assert main([*argv, "--size", "64", "--seed", str(seed), "--out", str(out)]) == 0
    picture = read_rgb_array(out)
    assert picture.shape[1] == 3 * 3 * 96  # before, after, ground truth: a 96-px frame 3x

    # each panel on its own: frame 2 (80 x 96, drawn 3x) with the untrained network's mask,
    # the trained network's, and the mask file's
    def thrice(image: np.ndarray) -> np.ndarray:
        return np.repeat(np.repeat(image, 3, axis=0), 3, axis=1)

    frame = thrice(read_rgb_array(split / "frame" / "v1" / "00002.jpg"))
    truth = np.asarray(Image.open(split / "mask" / "v1" / "00002.png"))
    assert set(np.unique(truth)) == {0, 255}
    before_mask, after_mask = masks[0][2], masks[1][2]  # the first run's masks of frame 2
    assert before_mask.shape == after_mask.shape == (80, 96)
    width = 3 * 96
    panels = [picture[:, i * width : (i + 1) * width] for i in range(3)]
    _check_panel(panels[0], frame, thrice(before_mask), PRED_COLOUR, "before")
    _check_panel(panels[1], frame, thrice(after_mask), PRED_COLOUR, "after")
    _check_panel(panels[2], frame, thrice(truth), GT_COLOUR, "ground truth")
    # and the masks are those of the two networks: the run's variant and seed untrained,
    # and the weights file's
    untrained = build_mtnet("mtnet-test", seed=seed, device="cpu", untrained_ok=True)
    for network, expected in (
        (untrained, before_mask),
        (build_mtnet(None, tiny_weights), after_mask),
    ):
        predictor = MTNetPredictor(network, "UVOS", (64, 64), clip_length=9, device="cpu")
        frames = [read_rgb_array(p) for p in sorted((split / "frame" / "v1").iterdir())]
        flows = [read_rgb_array(p) for p in sorted((split / "flow" / "v1").iterdir())]
        np.testing.assert_array_equal(list(predictor.segment(frames, flows))[2], expected)
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
