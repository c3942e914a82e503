"""test.py --video: a video file or a folder of frames in, masks and an overlay video out.

Tiny generated clips, the network randomly initialised (no weights: the smoke-run path) at
64x64 on one CPU thread, as in tests/test_inference.py; the untrained network is the
test-sized variant here.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

import model.build as build_module
from inference import config
from inference.config import parse_config
from model.variants import TEST_VARIANT
from tests.synthetic_videos import stems
from util.video import iter_frames, write_video

ROOT = Path(__file__).resolve().parents[1]
SIZE = (96, 128)  # (h, w) of the generated clips
RUN = ["--device", "cpu", "--num_workers", "0", "--test_length", "4", "--test_size", "64", "64"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def no_default_weights(tmp_path, monkeypatch):
    """The default weights file points to a tmp location that does not exist (a real
    saves/mtnet.pth on this machine must not change what the tests see)."""
    monkeypatch.setattr(config, "DEFAULT_MODEL", str(tmp_path / "saves" / "mtnet.pth"))


@pytest.fixture(autouse=True)
def untrained_is_test_sized(monkeypatch):
    """A run without weights builds the test-sized network (the pipeline is the point)."""
    monkeypatch.setattr(build_module, "DEFAULT_VARIANT", TEST_VARIANT)


def clip_frames(count: int, size: tuple[int, int] = SIZE, seed: int = 0) -> list[np.ndarray]:
    """RGB frames: a textured square moving right by 4 px a frame over a textured background."""
    rng = np.random.default_rng(seed)
    h, w = size
    background = cv2.resize(rng.integers(0, 256, (h // 8, w // 8, 3), np.uint8), (w, h))
    side = h // 3
    square = cv2.resize(rng.integers(0, 256, (4, 4, 3), np.uint8), (side, side))
    frames = []
    for t in range(count):
        frame = background.copy()
        frame[side : 2 * side, w // 8 + 4 * t : w // 8 + 4 * t + side] = square
        frames.append(frame)
    return frames


def make_clip(path: Path, count: int = 6, seed: int = 0) -> Path:
    return write_video(clip_frames(count, seed=seed), path, fps=8)


def mp4_frame_count(path: Path) -> int:
    """Frames decoded from a video file (not the container's count)."""
    return sum(1 for _ in iter_frames(path))


def read_masks(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))}


def mtimes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in sorted(folder.glob("[!.]*"))}


def error_line(script, capsys, args: list[str]) -> str:
    assert script.main(args) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("test.py: error: ")
    return lines[0]


def test_video_file_end_to_end_then_resume_then_a_changed_video(script, tmp_path, caplog):
    clip = make_clip(tmp_path / "clip.mp4")
    out = tmp_path / "out"
    args = ["--video", str(clip), "--output_dir", str(out), *RUN]
    with caplog.at_level(logging.INFO):
        assert script.main(args) == 0

    # masks: one per frame (the last reuses the preceding flow), the video's size, binary
    masks = read_masks(out / "MTNet" / "UVOS_videos" / "clip")
    assert list(masks) == [f"{s}.png" for s in stems(6)]
    for mask in masks.values():
        assert mask.shape == SIZE and mask.dtype == np.uint8
        assert set(np.unique(mask)) <= {0, 255}
    # the overlay video and images elsewhere, beside the flow (twice the width)
    overlay = out / "MTNet" / "UVOS_overlay"
    assert mp4_frame_count(overlay / "clip.mp4") == 6
    assert sorted(p.name for p in (overlay / "clip").iterdir()) == [f"{s}.jpg" for s in stems(6)]
    assert np.asarray(Image.open(overlay / "clip" / "00000.jpg")).shape == (96, 256, 3)
    # the work folder: decoded frames and the N-1 flows named after frame t
    work = out / "MTNet" / "work" / "clip"
    assert sorted(p.name for p in (work / "frame").iterdir()) == [f"{s}.png" for s in stems(6)]
    assert sorted(p.name for p in (work / "flow").glob("[!.]*")) == [f"{s}.jpg" for s in stems(5)]
    # no weights: said plainly, at the start and the end; the config records it
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("UNTRAINED" in w and "meaningless" in w and "saves/README.md" in w for w in warnings)
    assert "UNTRAINED" in warnings[-1]
    record = out / "MTNet" / "UVOS_videos" / "clip" / "test_config.json"  # beside the masks
    assert json.loads(record.read_text())["test_model"] is None

    # rerun: frames and existing flows are kept, a missing flow is made, same masks (seeded)
    frames_before, flows_before = mtimes(work / "frame"), mtimes(work / "flow")
    (work / "flow" / "00004.jpg").unlink()
    assert script.main(args) == 0
    assert mtimes(work / "frame") == frames_before
    flows_after = mtimes(work / "flow")
    assert list(flows_after) == list(flows_before)
    assert {k: v for k, v in flows_after.items() if k != "00004.jpg"} == {
        k: v for k, v in flows_before.items() if k != "00004.jpg"
    }
    for name, mask in read_masks(out / "MTNet" / "UVOS_videos" / "clip").items():
        np.testing.assert_array_equal(mask, masks[name])

    # the video changes (another clip, newer): frames re-extracted, every flow made again
    make_clip(clip, count=5, seed=1)
    stat = clip.stat()
    os.utime(clip, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert script.main(args) == 0
    assert sorted(p.name for p in (work / "frame").iterdir()) == [f"{s}.png" for s in stems(5)]
    flows_new = mtimes(work / "flow")
    assert list(flows_new) == [f"{s}.jpg" for s in stems(4)]
    assert all(flows_new[k] != flows_after[k] for k in flows_new)
    assert mp4_frame_count(overlay / "clip.mp4") == 5


def test_frames_folder_input_vsod(script, tmp_path):
    folder = tmp_path / "walk"
    folder.mkdir()
    names = [f"f{i:03d}" for i in range(5)]
    for name, frame in zip(names, clip_frames(5, size=(60, 80)), strict=True):
        Image.fromarray(frame).save(folder / f"{name}.png")
    before = sorted(p.name for p in folder.iterdir())
    out = tmp_path / "out"
    args = ["--video", str(folder), "--output_dir", str(out), "--task_name", "VSOD", *RUN]
    assert script.main(args) == 0
    maps = read_masks(out / "MTNet" / "VSOD_videos" / "walk")
    assert list(maps) == [f"{n}.png" for n in names]
    assert all(m.shape == (60, 80) for m in maps.values())
    assert any(len(np.unique(m)) > 2 for m in maps.values())  # VSOD: soft maps
    work = out / "MTNet" / "work" / "walk"
    assert sorted(p.name for p in (work / "flow").glob("[!.]*")) == [f"{n}.jpg" for n in names[:4]]
    assert not (work / "frame").exists()  # frames are read in place
    assert sorted(p.name for p in folder.iterdir()) == before  # nothing written there
    assert mp4_frame_count(out / "MTNet" / "VSOD_overlay" / "walk.mp4") == 5


def test_default_weights_rule(tmp_path):
    default = Path(config.DEFAULT_MODEL)
    # no --video: the default file stays the one to load (missing = the usual error)
    assert parse_config([]).test_model == str(default)
    # --video: the default when present, else none (a randomly initialised network)
    assert parse_config(["--video", "x.mp4"]).test_model is None
    default.parent.mkdir(parents=True)
    default.touch()
    assert parse_config(["--video", "x.mp4"]).test_model == str(default)
    explicit = ["--video", "x.mp4", "--test_model", "mine.pth"]
    assert parse_config(explicit).test_model == "mine.pth"


def test_explicit_missing_test_model_fails_before_any_work(script, capsys, tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", count=3)
    missing = tmp_path / "none.pth"
    args = ["--video", str(clip), "--test_model", str(missing), "--output_dir", str(tmp_path)]
    line = error_line(script, capsys, [*args, *RUN])
    assert str(missing) in line
    assert not (tmp_path / "MTNet" / "work").exists()


def _unreadable(tmp_path: Path) -> Path:
    path = tmp_path / "bad.mp4"
    path.write_bytes(b"not a video")
    return path


def _folder(tmp_path: Path, names: list[str]) -> Path:
    folder = tmp_path / "frames"
    folder.mkdir()
    for name, frame in zip(names, clip_frames(len(names)), strict=True):
        Image.fromarray(frame).save(folder / name)
    return folder


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda tmp: tmp / "missing.mp4", "no such video file or folder"),
        (_unreadable, "video"),
        (lambda tmp: _folder(tmp, []), "no frames"),
        (lambda tmp: _folder(tmp, ["00000.png"]), "a single frame"),
    ],
    ids=["missing", "unreadable", "empty-folder", "one-frame"],
)
def test_input_errors_are_one_line_naming_the_path(script, capsys, tmp_path, make, expected):
    source = make(tmp_path)
    line = error_line(script, capsys, ["--video", str(source), "--output_dir", str(tmp_path), *RUN])
    assert str(source) in line and expected in line


def test_raft_without_weights_is_a_flag_error(script, capsys, tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", count=3)
    args = ["--video", str(clip), "--flow_method", "raft", "--output_dir", str(tmp_path), *RUN]
    assert "--raft_weights" in error_line(script, capsys, args)
    missing = tmp_path / "raft.pth"
    line = error_line(script, capsys, [*args, "--raft_weights", str(missing)])
    assert str(missing) in line
