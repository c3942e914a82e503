"""visualize.py: overlays, side-by-side panels, the MP4 and GIF, and its errors."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from inference.visualize import GT_COLOUR, PRED_COLOUR, compose, overlay
from tests.conftest import load_script
from tests.synthetic_videos import make_dataset, stems
from util.layout import DrawnVideo

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def script():
    return load_script("visualize.py")


def _square_mask(shape: tuple[int, int], value: int = 255) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    mask[10:30, 12:40] = value
    return mask


def test_overlay_tints_the_mask_and_draws_its_contour():
    frame = np.full((40, 56, 3), 100, np.uint8)
    out = overlay(frame, _square_mask((40, 56)), PRED_COLOUR)
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert (out[0, 0] == 100).all()  # background untouched
    assert (out[10, 20] == PRED_COLOUR).all()  # the contour on the mask's edge
    inside = out[20, 25].astype(int)
    assert (inside == (np.array(PRED_COLOUR) + 100) // 2).all()  # half-strength tint
    soft = overlay(frame, _square_mask((40, 56), 64), PRED_COLOUR)  # soft VSOD map: no contour
    assert (soft[10, 20] != PRED_COLOUR).any() and (soft[20, 25] != 100).any()


def test_compose_puts_flow_and_ground_truth_beside():
    frame = np.zeros((40, 56, 3), np.uint8)
    flow = np.full((20, 28, 3), 200, np.uint8)  # any size: fitted to the frame
    gt = _square_mask((40, 56))
    out = compose(frame, gt, "MTNet", flow, gt)
    assert out.shape == (40, 3 * 56, 3)
    assert (out[39, 56 + 30] == 200).all()
    assert (out[10, 2 * 56 + 20] == GT_COLOUR).all()
    assert compose(frame, gt, "MTNet").shape == (40, 56, 3)


def _predictions(out: Path, videos: dict[str, tuple[int, tuple[int, int]]]) -> None:
    for name, (count, size) in videos.items():
        folder = out / "MTNet" / "UVOS" / "SYN" / name
        folder.mkdir(parents=True)
        for stem in stems(count):
            Image.fromarray(_square_mask(size)).save(folder / f"{stem}.png")


def test_dataset_images_video_and_gif(script, tmp_path):
    data = make_dataset(tmp_path / "SYN")
    (data / "mask" / "a").mkdir(parents=True)
    Image.fromarray(_square_mask((40, 56))).save(data / "mask" / "a" / "00000.png")
    _predictions(tmp_path / "out", {"a": (4, (40, 56)), "b": (3, (30, 50))})  # a: drop-tail
    args = ["--output_dir", str(tmp_path / "out"), "--vis_dataset", str(data), "--with_flow"]
    args += ["--with_gt", "--make_video", "--save_root", str(tmp_path / "vis"), "--videos", "a"]
    assert script.main(args) == 0
    vis = tmp_path / "vis" / "MTNet" / "UVOS" / "SYN"
    assert sorted(p.name for p in vis.iterdir()) == ["a", "a.gif", "a.mp4"]
    assert sorted(p.name for p in (vis / "a").iterdir()) == [f"{s}.jpg" for s in stems(4)]
    assert np.asarray(Image.open(vis / "a" / "00003.jpg")).shape == (40, 3 * 56, 3)
    capture = cv2.VideoCapture(str(vis / "a.mp4"))
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == 4
    assert capture.get(cv2.CAP_PROP_FRAME_WIDTH) == 3 * 56
    assert Image.open(vis / "a.gif").n_frames == 4


def test_errors_are_one_line_naming_the_path(script, capsys, tmp_path):
    data = make_dataset(tmp_path / "SYN")
    args = ["--output_dir", str(tmp_path / "none"), "--vis_dataset", str(data)]
    assert script.main(args) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("visualize.py: error: ") and str(tmp_path / "none") in line
    _predictions(tmp_path / "out", {"a": (6, (40, 56))})  # a prediction without a frame
    assert script.main(["--output_dir", str(tmp_path / "out"), "--vis_dataset", str(data)]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "00005.png" in line and "no frame of that name" in line


def test_drawn_video_paths() -> None:
    drawn = DrawnVideo(Path("vis"), "..")  # an unsafe name stays inside the folder
    assert drawn.paths == [Path("vis/__"), Path("vis/__.mp4"), Path("vis/__.gif")]
    assert drawn.frame("00003") == Path("vis/__/00003.jpg")
