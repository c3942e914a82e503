"""The flow tool, video helpers and bundled sample on small synthetic clips (CPU, seconds)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torchvision.models.optical_flow import raft_small
from torchvision.utils import flow_to_image

from util import flow as flowlib
from util.flow import DISFlow, FlowSettings, RAFTFlow, compute_flows, render_flow
from util.image import read_rgb_array, write_image
from util.sample import SAMPLE_DIR, make_clip, mask_dir, noise_texture
from util.video import (
    VideoError,
    extract_frames,
    iter_frames,
    probe_video,
    video_fps,
    write_video,
)

REPO = Path(__file__).resolve().parent.parent
OFFSET = (3, 2)  # (dx, dy) in pixels per frame of the synthetic square
SQUARE = 48


def square_box(t: int, size: tuple[int, int]) -> tuple[int, int, int]:
    """(x, y, side) of the square in frame ``t`` of a clip of ``size`` (height, width)."""
    height, width = size
    return width // 4 + t * OFFSET[0], height // 4 + t * OFFSET[1], min(SQUARE, height // 3)


def square_clip(num_frames: int, size: tuple[int, int] = (128, 160)) -> list[np.ndarray]:
    """RGB frames ``[H, W, 3]``: a textured square moving by OFFSET per frame over a static
    textured background (see :func:`square_box`)."""
    rng = np.random.default_rng(1)
    background = (noise_texture(size, rng) * 255).astype(np.uint8)
    side = square_box(0, size)[2]
    square = (noise_texture((side, side), rng, cells=(3, 8, 24)) * 255).astype(np.uint8)
    frames = []
    for t in range(num_frames):
        x, y, _ = square_box(t, size)
        frame = background.copy()
        frame[y : y + side, x : x + side] = square
        frames.append(frame)
    return frames


def write_frames(frames: list[np.ndarray], folder: Path, suffix: str = ".png") -> list[Path]:
    """Write RGB frames as ``folder/00000<suffix>``, ... and return the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, frame in enumerate(frames):
        path = folder / f"{index:05d}{suffix}"
        assert cv2.imwrite(str(path), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        paths.append(path)
    return paths


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    """``util.flow.main(argv)``: exit status and the lines it printed to stderr."""
    status = flowlib.main(argv)
    return status, capsys.readouterr().err.strip().splitlines()


@pytest.fixture(scope="module")
def raft_model() -> torch.nn.Module:
    """A randomly initialised torchvision raft_small (no weights are downloaded)."""
    torch.manual_seed(0)
    return raft_small(weights=None)


def test_dis_recovers_the_square_offset(tmp_path: Path) -> None:
    paths = write_frames(square_clip(4), tmp_path)
    dis = DISFlow()
    for t in range(len(paths) - 1):
        flow = dis(read_rgb_array(paths[t]), read_rgb_array(paths[t + 1]))
        x, y, side = square_box(t, (128, 160))
        mean = flow[y : y + side, x : x + side].reshape(-1, 2).mean(axis=0)
        assert flow.shape == (128, 160, 2)
        assert np.hypot(*(mean - OFFSET)) < 0.5, f"pair {t}: mean flow {mean}, moved {OFFSET}"


def test_flow_names_and_count_follow_davis(tmp_path: Path) -> None:
    write_frames(square_clip(5), tmp_path / "frames", suffix=".jpg")
    written = compute_flows(tmp_path / "frames", tmp_path / "flow", progress=False)
    names = [f"{i:05d}.jpg" for i in range(4)]  # N frames -> N-1 flows; the last frame has none
    assert [p.name for p in written] == names
    assert sorted(p.name for p in (tmp_path / "flow").glob("[!.]*")) == names
    assert read_rgb_array(written[0]).shape == (128, 160, 3)


def test_frames_in_natural_order(tmp_path: Path) -> None:
    frames = square_clip(3, size=(96, 128))
    for name, frame in zip(("1.png", "2.png", "10.png"), frames, strict=True):
        cv2.imwrite(str(tmp_path / name), frame)
    written = compute_flows(tmp_path, tmp_path / "flow", progress=False)
    assert [p.name for p in written] == ["1.jpg", "2.jpg"]


def test_existing_flows_are_kept(tmp_path: Path) -> None:
    write_frames(square_clip(4), tmp_path / "frames")
    first = compute_flows(tmp_path / "frames", tmp_path / "flow", progress=False)
    stamps = {p: p.stat().st_mtime_ns for p in first}
    first[1].unlink()
    again = compute_flows(tmp_path / "frames", tmp_path / "flow", progress=False)
    assert again == first and first[1].exists()
    assert all(p.stat().st_mtime_ns == stamps[p] for p in (first[0], first[2]))


def test_render_flow_is_torchvision_flow_to_image(tmp_path: Path) -> None:
    yy, xx = np.mgrid[:48, :64].astype(np.float32)
    field = np.stack([yy - 24, 32 - xx], axis=-1) * 0.25  # a rotation, all directions
    expected = flow_to_image(torch.from_numpy(field).permute(2, 0, 1)).permute(1, 2, 0).numpy()
    assert np.array_equal(render_flow(field), expected)
    path = write_image(tmp_path / "f.jpg", render_flow(field))
    assert np.abs(read_rgb_array(path).astype(int) - expected).mean() < 3  # JPEG, quality 95


def test_raft_pads_and_crops_to_the_frame_size(raft_model: torch.nn.Module) -> None:
    frames = square_clip(2, size=(60, 70))  # not multiples of 8
    flow = RAFTFlow(raft_model, num_flow_updates=2)(frames[0], frames[1])
    assert flow.shape == (60, 70, 2) and flow.dtype == np.float32 and np.isfinite(flow).all()


def test_raft_writes_named_flows(tmp_path: Path, raft_model: torch.nn.Module) -> None:
    write_frames(square_clip(3, size=(64, 64)), tmp_path / "frames")
    written = compute_flows(
        tmp_path / "frames", tmp_path / "flow", FlowSettings("raft", raft_iters=2),
        model=raft_model, progress=False,
    )  # fmt: skip
    assert [p.name for p in written] == ["00000.jpg", "00001.jpg"]
    assert all(read_rgb_array(p).shape == (64, 64, 3) for p in written)


def test_cli_loads_raft_weights_from_a_file(
    tmp_path: Path, raft_model: torch.nn.Module, capsys: pytest.CaptureFixture[str]
) -> None:
    torch.save(raft_model.state_dict(), tmp_path / "raft_small.pth")
    write_frames(square_clip(2, size=(64, 64)), tmp_path / "frames")
    argv = ["--frames", str(tmp_path / "frames"), "--out", str(tmp_path / "flow"),
            "--method", "raft", "--raft_model", "raft_small", "--raft_weights",
            str(tmp_path / "raft_small.pth"), "--device", "cpu", "--raft_iters", "1"]  # fmt: skip
    assert run_cli(argv, capsys)[0] == 0
    assert sorted(p.name for p in (tmp_path / "flow").glob("[!.]*")) == ["00000.jpg"]


def test_cli_root_mode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clip = square_clip(3, size=(64, 80))
    write_frames(clip, tmp_path / "val" / "frame" / "a", suffix=".jpg")
    write_frames(clip[:2], tmp_path / "val" / "frame" / "b", suffix=".jpg")
    assert run_cli(["--root", str(tmp_path), "--no_progress"], capsys)[0] == 0
    assert sorted(p.name for p in (tmp_path / "val" / "flow" / "a").glob("[!.]*")) == [
        "00000.jpg",
        "00001.jpg",
    ]
    assert sorted(p.name for p in (tmp_path / "val" / "flow" / "b").glob("[!.]*")) == ["00000.jpg"]


def bad_weights(folder: Path, kind: str) -> Path:
    """A weights file that must be refused: ``kind`` is text, foreign or other_raft."""
    path = folder / f"{kind}.pth"
    if kind == "text":
        path.write_text("not weights\n")
    elif kind == "foreign":
        torch.save({"conv.weight": torch.zeros(3, 3)}, path)
    else:
        torch.save(raft_small(weights=None).state_dict(), path)  # raft_large is asked for
    return path


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing_folder", "folder not found"),
        ("empty_folder", "no frames"),
        ("raft_without_weights", "needs --raft_weights"),
        ("missing_weights", "weights file not found"),
        ("text", "not a loadable weights file"),
        ("foreign", "does not hold torchvision raft_large weights"),
        ("other_raft", "does not hold torchvision raft_large weights"),
        ("unreadable_frame", "cannot read this image"),
        ("mixed_sizes", "frames of different sizes"),
        ("out_is_frames", "must differ"),
        ("out_is_a_file", "is a file; expected a folder"),
    ],
)
def test_cli_errors_are_one_line_and_status_2(
    tmp_path: Path, case: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    frames = tmp_path / "frames"
    if case != "missing_folder":
        write_frames(square_clip(2, size=(64, 64)), frames)
    argv = ["--frames", str(frames), "--out", str(tmp_path / "flow"), "--no_progress"]
    if case == "empty_folder":
        for path in frames.iterdir():
            path.unlink()
    elif case == "raft_without_weights":
        argv += ["--method", "raft"]
    elif case == "missing_weights":
        argv += ["--method", "raft", "--raft_weights", str(tmp_path / "none.pth")]
    elif case in ("text", "foreign", "other_raft"):
        argv += ["--method", "raft", "--raft_weights", str(bad_weights(tmp_path, case))]
    elif case == "unreadable_frame":
        (frames / "00001.png").write_bytes(b"not an image")
    elif case == "mixed_sizes":
        cv2.imwrite(str(frames / "00001.png"), np.zeros((32, 64, 3), np.uint8))
    elif case == "out_is_frames":
        argv[3] = str(frames)
    elif case == "out_is_a_file":
        (tmp_path / "flow").write_text("x")
    status, lines = run_cli(argv, capsys)
    assert status == 2
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines


def test_module_entry_point_reports_errors(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "util.flow", "--frames", str(tmp_path / "x"), "--out", "y"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {tmp_path}/x: folder not found")


def test_extract_frames_names_and_count(tmp_path: Path) -> None:
    frames, _ = make_clip(num_frames=6, size=(48, 64))
    video = write_video(frames, tmp_path / "clip.mp4", fps=10)
    paths = extract_frames(video, tmp_path / "frames", progress=False)
    assert [p.name for p in paths] == [f"{i:05d}.jpg" for i in range(6)]
    assert read_rgb_array(paths[0]).shape == (48, 64, 3)
    assert video_fps(video) == pytest.approx(10)


def test_probe_video_reads_the_header_and_refuses_a_non_video(tmp_path: Path) -> None:
    frames, _ = make_clip(num_frames=7, size=(48, 64))
    info = probe_video(write_video(frames, tmp_path / "clip.mp4", fps=12))
    assert (info.width, info.height, info.frames) == (64, 48, 7)
    assert info.fps == pytest.approx(12) and info.seconds == pytest.approx(7 / 12)
    (tmp_path / "notes.mp4").write_text("not a video\n")
    with pytest.raises(VideoError, match=r"^cannot open video .*notes\.mp4 \(not a video"):
        probe_video(tmp_path / "notes.mp4")
    with pytest.raises(VideoError, match="video file not found: .*absent\\.mp4"):
        probe_video(tmp_path / "absent.mp4")


def test_bundled_sample_is_the_generated_clip() -> None:
    video = SAMPLE_DIR / "sample.mp4"
    assert video.stat().st_size < 1_000_000
    frames, masks = make_clip()
    decoded = list(iter_frames(video))
    assert len(decoded) == len(frames) == 32
    for got, made in zip(decoded, frames, strict=True):
        assert got.shape == made.shape == (240, 320, 3)
        assert np.abs(got.astype(int) - made).mean() < 6  # lossy mp4v
    for index, mask in enumerate(masks):
        # The same disc, not the same pixels: the disc's edge depends on the OpenCV
        # version's interpolation, so a few edge pixels may differ between versions.
        stored = cv2.imread(str(mask_dir() / f"{index:05d}.png"), cv2.IMREAD_GRAYSCALE)
        assert stored.shape == mask.shape and set(np.unique(stored)) == {0, 255}
        fg_stored, fg_made = stored > 127, mask > 127
        iou = np.count_nonzero(fg_stored & fg_made) / np.count_nonzero(fg_stored | fg_made)
        assert iou > 0.97, f"mask {index}: IoU {iou:.4f} with the regenerated disc"


def test_a_changed_frame_remakes_its_flows_and_shipped_flows_stay(tmp_path: Path) -> None:
    frames = write_frames(square_clip(5, size=(64, 64)), tmp_path / "frames")
    made = compute_flows(tmp_path / "frames", tmp_path / "flow", progress=False)
    stamps = {p.name: p.stat().st_mtime_ns for p in made}
    rewritten = cv2.imread(str(frames[2]))
    cv2.imwrite(str(frames[2]), 255 - rewritten)  # frame 2 changes: flows 1->2 and 2->3 are stale
    compute_flows(tmp_path / "frames", tmp_path / "flow", progress=False)
    changed = {p.name for p in made if p.stat().st_mtime_ns != stamps[p.name]}
    assert changed == {"00001.jpg", "00002.jpg"}
    # the rerun keeps what is up to date
    stamps = {p.name: p.stat().st_mtime_ns for p in made}
    compute_flows(tmp_path / "frames", tmp_path / "flow", progress=False)
    assert {p.name: p.stat().st_mtime_ns for p in made} == stamps

    # flows that came without a record (shipped with a dataset) are kept as they are
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    for path in made:
        (shipped / path.name).write_bytes(path.read_bytes())
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in shipped.iterdir()}
    cv2.imwrite(str(frames[0]), rewritten)
    compute_flows(tmp_path / "frames", shipped, progress=False)
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in shipped.glob("[!.]*")} == before


def test_cut_off_jpeg_frame_is_an_error_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frames = write_frames(square_clip(3, size=(64, 64)), tmp_path / "frames", suffix=".jpg")
    data = frames[1].read_bytes()
    frames[1].write_bytes(data[: len(data) * 2 // 3])  # libjpeg alone would only warn
    argv = ["--frames", str(tmp_path / "frames"), "--out", str(tmp_path / "flow"), "--no_progress"]
    status, err = run_cli(argv, capsys)
    assert status == 2 and len(err) == 1 and str(frames[1]) in err[0] and "truncated" in err[0]
    assert not list((tmp_path / "flow").glob("00001.jpg"))


def test_raft_weights_with_nan_are_refused(tmp_path: Path, raft_model: torch.nn.Module) -> None:
    state = {k: v.clone() for k, v in raft_model.state_dict().items()}
    key = next(k for k, v in state.items() if v.is_floating_point())
    state[key].view(-1)[0] = float("nan")
    torch.save(state, tmp_path / "raft.pth")
    with pytest.raises(flowlib.FlowError, match=rf"raft\.pth: tensor {re.escape(key)} holds NaN"):
        flowlib.load_raft(tmp_path / "raft.pth", "raft_small")


@pytest.mark.parametrize("iters", ["0", "-3"])
def test_a_bad_raft_iters_is_one_line_from_the_flow_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], iters: str
) -> None:
    write_frames(square_clip(2, size=(64, 64)), tmp_path / "frames")
    argv = ["--frames", str(tmp_path / "frames"), "--out", str(tmp_path / "flow"), "--no_progress"]
    status, err = run_cli([*argv, "--raft_iters", iters], capsys)
    assert (status, err) == (2, [f"error: --raft_iters {iters}: expected a positive int"])
    assert not (tmp_path / "flow").exists()  # refused before any work


def test_test_py_refuses_a_bad_raft_iters_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.conftest import load_script

    write_frames(square_clip(2, size=(64, 64)), tmp_path / "frames")
    argv = ["--video", str(tmp_path / "frames"), "--output_dir", str(tmp_path / "out")]
    assert load_script("test.py").main([*argv, "--raft_iters", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["test.py: error: --raft_iters 0: expected a positive int"]


def test_flow_settings_check_their_values_when_made() -> None:
    """Every user of FlowSettings (the predictor, the commands) gets the same checks."""
    from util.errors import InputError

    cases = [
        ({"raft_iters": 0}, "raft_iters=0: expected a positive int"),
        ({"raft_iters": 2.5}, "raft_iters=2.5: expected a positive int"),
        ({"raft_iters": True}, "raft_iters=True: expected a positive int"),
        ({"method": "farneback"}, "method='farneback': expected one of dis, raft"),
        ({"raft_model": "raft_tiny"}, "raft_model='raft_tiny': expected one of raft_large, raft_small"),
    ]  # fmt: skip
    for kwargs, message in cases:
        with pytest.raises(InputError, match=f"^{re.escape(message)}$"):
            FlowSettings(**kwargs)
    made = FlowSettings("raft", raft_iters=np.int64(3))
    assert made.raft_iters == 3 and type(made.raft_iters) is int  # recorded as JSON
