"""One rule for frame order and image reading, checked in every entry point.

Frame order: numbers in names compare as numbers (``2`` before ``10``). Reading: a 16-bit
image gives what its 8-bit copy gives; palette frames through their colours, palette masks
by index; alpha dropped; a truncated file is an error naming it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dataset.registry import resolve_benchmark
from dataset.test_videos import pair_video
from dataset.train_clips import pair_video as pair_train_video
from dataset.transforms import load_rgb, load_train_mask
from inference import MTNetPredictor
from inference.visualize import find_videos
from model import build_mtnet
from test_scripts.evalio import image_names, read_pair
from tests.conftest import load_script
from util.errors import InputError
from util.flow import DISFlow, compute_flows, render_flow
from util.image import (
    frame_sort_key,
    jpeg_round_trip,
    list_images,
    read_grey,
    read_mask,
    read_rgb,
    read_rgb_array,
)

UNPADDED = ["1", "2", "10", "11"]  # text order would be 1, 10, 11, 2


def _image(seed: int, size=(24, 32)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    img = 100 + 60 * np.sin(0.3 * xx[..., None] + 0.2 * yy[..., None] * (seed + 1) + [0, 1, 2])
    return np.clip(img + rng.normal(0, 5, img.shape), 0, 255).astype(np.uint8)


def _save16(path: Path, rgb: np.ndarray) -> None:
    """A 16-bit grey PNG whose 8-bit reading is the grey of ``rgb`` (value * 257)."""
    grey = np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.uint16) * 257
    Image.fromarray(grey).save(path)  # PIL writes uint16 arrays as 16-bit PNG
    assert Image.open(path).mode.startswith("I")


def _video(root: Path, names: list[str], sixteen_bit: bool = False) -> Path:
    """``root/{frame,flow,mask}/v/`` with PNG frames (16-bit grey if asked), N-1 flows."""
    for kind in ("frame", "flow", "mask"):
        (root / kind / "v").mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        frame = _image(i)
        if sixteen_bit:
            _save16(root / "frame" / "v" / f"{name}.png", frame)
        else:
            Image.fromarray(frame).convert("L").save(root / "frame" / "v" / f"{name}.png")
        if i < len(names) - 1:
            Image.fromarray(_image(100 + i)).save(root / "flow" / "v" / f"{name}.png")
        Image.fromarray(((frame[..., 0] > 100) * 255).astype(np.uint8)).save(
            root / "mask" / "v" / f"{name}.png"
        )
    return root


# ---- the readers ----------------------------------------------------------------------


def test_natural_order():
    names = [Path(f"{n}.jpg") for n in ["10", "2", "1", "a10", "a9", "00003"]]
    assert [p.stem for p in sorted(names, key=frame_sort_key)] == ["1", "2", "00003", "10", "a9", "a10"]  # fmt: skip


def test_sixteen_bit_palette_alpha_and_grey(tmp_path):
    rgb = _image(0)
    grey8 = np.asarray(Image.fromarray(rgb).convert("L"))
    _save16(tmp_path / "g16.png", rgb)
    assert np.array_equal(read_rgb_array(tmp_path / "g16.png"), np.repeat(grey8[..., None], 3, 2))
    assert np.array_equal(read_grey(tmp_path / "g16.png"), grey8)
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 7, np.uint8)])).save(tmp_path / "a.png")
    assert np.array_equal(read_rgb_array(tmp_path / "a.png"), rgb)
    palette = Image.fromarray(np.array([[0, 1], [2, 1]], np.uint8), "P")
    palette.putpalette([0, 0, 0, 200, 10, 10, 0, 0, 1] + [0] * 759)
    palette.save(tmp_path / "p.png")
    assert read_rgb_array(tmp_path / "p.png")[0, 1].tolist() == [200, 10, 10]
    # by index: colour (0, 0, 1) has luminance 0 but is object 2
    assert read_mask(tmp_path / "p.png").tolist() == [[0, 255], [255, 255]]
    assert read_grey(tmp_path / "p.png").tolist()[1][0] == 0  # predictions: by luminance


def test_truncated_files_are_errors_naming_the_file(tmp_path):
    for suffix in (".jpg", ".png"):
        Image.fromarray(_image(1, (64, 64))).save(tmp_path / f"whole{suffix}")
        data = (tmp_path / f"whole{suffix}").read_bytes()
        cut = tmp_path / f"cut{suffix}"
        cut.write_bytes(data[: len(data) // 2])
        for reader in (read_rgb, read_grey, read_mask):
            with pytest.raises(InputError, match=str(cut)):
                reader(cut)


# ---- every entry point ------------------------------------------------------------------


def test_frame_order_in_every_listing(tmp_path):
    root = _video(tmp_path / "D", UNPADDED)
    expected = UNPADDED
    bench = resolve_benchmark(str(root), tmp_path)
    assert pair_video(bench.video("v"), drop_tail=False).stems == expected  # test.py
    assert [p.stem for p in pair_train_video(root, "v").frames] == expected  # training
    assert [Path(n).stem for n in image_names(root / "mask" / "v")] == expected  # evaluation
    assert [p.stem for p in list_images(root / "frame" / "v")] == expected  # predictor, flow
    out = tmp_path / "pred"
    (out / "v").mkdir(parents=True)
    for n in UNPADDED:
        Image.fromarray(np.zeros((24, 32), np.uint8)).save(out / "v" / f"{n}.png")
    assert find_videos(bench, out, None)[0].stems == expected  # visualize.py


def test_util_flow_pairs_frames_in_number_order(tmp_path):
    root = _video(tmp_path / "D", UNPADDED)
    flows = compute_flows(root / "frame" / "v", tmp_path / "flows", progress=False)
    assert [p.stem for p in flows] == ["1", "2", "10"]
    frames = [read_rgb_array(root / "frame" / "v" / f"{n}.png") for n in ("2", "10")]
    expected = jpeg_round_trip(render_flow(DISFlow()(*frames)))
    assert np.array_equal(read_rgb_array(flows[1]), expected)  # flow 2 is frame 2 -> frame 10


def test_sixteen_bit_frames_equal_their_8_bit_copies_everywhere(tmp_path):
    d8 = _video(tmp_path / "D8", ["00000", "00001", "00002"])
    d16 = _video(tmp_path / "D16", ["00000", "00001", "00002"], sixteen_bit=True)
    f8, f16 = (d / "frame" / "v" / "00001.png" for d in (d8, d16))
    # training
    assert np.array_equal(np.asarray(load_rgb(f8)), np.asarray(load_rgb(f16)))
    # util.flow
    a = compute_flows(d8 / "frame" / "v", tmp_path / "fl8", progress=False)
    b = compute_flows(d16 / "frame" / "v", tmp_path / "fl16", progress=False)
    assert all(
        np.array_equal(read_rgb_array(x), read_rgb_array(y)) for x, y in zip(a, b, strict=True)
    )
    # evaluation: a 16-bit prediction scores as its 8-bit copy
    pred8, _ = read_pair(f8, d8 / "mask" / "v" / "00001.png")
    pred16, _ = read_pair(f16, d8 / "mask" / "v" / "00001.png")
    assert np.array_equal(pred8, pred16)
    # training masks: 16-bit 0/65535 mask = 8-bit 0/255 mask
    mask = np.asarray(Image.open(d8 / "mask" / "v" / "00001.png"), dtype=np.uint16) * 257
    Image.fromarray(mask).save(tmp_path / "m16.png")
    assert np.array_equal(
        np.asarray(load_train_mask(tmp_path / "m16.png")),
        np.asarray(load_train_mask(d8 / "mask" / "v" / "00001.png")),
    )


def test_sixteen_bit_and_unpadded_frames_in_test_py_and_the_predictor(tiny_weights, tmp_path):
    torch.manual_seed(0)
    weights = tiny_weights
    script = load_script("test.py")
    outputs = {}
    for name, sixteen in (("D8", False), ("D16", True)):
        root = _video(tmp_path / name, UNPADDED, sixteen_bit=sixteen)
        args = ["--test_model", str(weights), "--test_dataset", str(root), "--output_dir"]
        args += [str(tmp_path / "out"), "--device", "cpu", "--num_workers", "0"]
        args += ["--test_length", "2", "--test_size", "64", "64"]
        assert script.main(args) == 0
        folder = tmp_path / "out" / "MTNet" / "UVOS" / name / "v"
        outputs[name] = [read_grey(folder / f"{n}.png") for n in UNPADDED]
    assert all(np.array_equal(a, b) for a, b in zip(outputs["D8"], outputs["D16"], strict=True))
    # the predictor on the frames in number order gives test.py's masks
    root = tmp_path / "D16"
    predictor = MTNetPredictor(
        build_mtnet(None, weights=weights, device="cpu"), test_size=(64, 64), clip_length=2
    )
    frames = [read_rgb_array(p) for p in list_images(root / "frame" / "v")]
    flows = [read_rgb_array(p) for p in list_images(root / "flow" / "v")]
    masks = list(predictor.segment(frames, flows))
    assert all(np.array_equal(a, b) for a, b in zip(outputs["D16"], masks, strict=True))
