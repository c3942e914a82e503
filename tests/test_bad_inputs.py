"""Odd or broken inputs across the scripts: each works correctly or stops with one line.

Output paths, stale temporary files, weights holding NaN, flow images of another size
than their frames, the default number of reading processes and the pinned dependencies.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from dataset.test_videos import VideoClips, VideoSpec, pair_video
from dataset.train_clips import check_files, list_videos
from inference import config as test_config
from model.weights import release_state_dict
from tests.conftest import load_script, tiny_mtnet
from tests.synthetic_videos import make_dataset, make_video, stems
from tests.train_helpers import square_video
from util.errors import InputError
from util.fileio import atomic_path, check_output_dir, check_output_file, temp_name

REPO = Path(__file__).resolve().parents[1]
PROC = Path("/proc/mtnet_no_such_dir")  # cannot be created, even by root


def one_error_line(main, argv: list[str], capsys, prefix: str) -> str:
    """``main(argv)`` exits with 2 and prints exactly one line, starting with ``prefix``."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(prefix), lines
    return lines[0]


# ---------------------------------------------------------------------------------------
# Output paths


def test_output_path_checks(tmp_path: Path) -> None:
    assert check_output_dir(tmp_path / "a" / "b", "--out") == tmp_path / "a" / "b"
    assert list(tmp_path.iterdir()) == []  # checked, not made: the probe file is gone
    (tmp_path / "f").write_text("x")
    with pytest.raises(InputError, match=rf"^--out {tmp_path / 'f'}: {tmp_path / 'f'} is a file"):
        check_output_dir(tmp_path / "f", "--out")
    with pytest.raises(InputError, match=rf"^--out {tmp_path / 'f' / 'sub'}: .* is a file"):
        check_output_dir(tmp_path / "f" / "sub", "--out")
    with pytest.raises(InputError, match=rf"^--out {PROC}: cannot write in /proc \(to make {PROC}"):
        check_output_dir(PROC, "--out")
    with pytest.raises(InputError, match="is a folder; expected a file name"):
        check_output_file(tmp_path, "--json")
    assert check_output_file(tmp_path / "new" / "s.json", "--json").name == "s.json"


@pytest.fixture(scope="module")
def test_script():
    return load_script("test.py")


@pytest.mark.parametrize("where", ["file", "proc"])
def test_test_py_output_dir_is_checked_before_any_work(test_script, capsys, tmp_path, where):
    (tmp_path / "file").write_text("x")
    out = tmp_path / "file" if where == "file" else PROC
    missing_model = tmp_path / "absent.pth"  # would be the first error of a run that starts
    argv = ["--test_model", str(missing_model), "--test_dataset", str(tmp_path / "none")]
    line = one_error_line(test_script.main, [*argv, "--output_dir", str(out)], capsys, "test.py")
    assert f"--output_dir {out}:" in line


def test_visualize_flags_and_save_root(capsys, tmp_path):
    script = load_script("visualize.py")
    (tmp_path / "file").write_text("x")
    base = ["--output_dir", str(tmp_path), "--save_root", str(tmp_path / "vis")]
    for flags, expected in (
        (["--gif_width", "0"], "--gif_width 0: expected a positive number"),
        (["--fps", "nan"], "--fps nan: expected a positive frame rate"),
        (["--save_root", str(tmp_path / "file")], f"--save_root {tmp_path / 'file'}:"),
    ):
        line = one_error_line(script.main, [*base, *flags], capsys, "visualize.py: error: ")
        assert expected in line


# ---------------------------------------------------------------------------------------
# Temporary files of killed runs


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return int(done.stdout)


def test_temp_files_of_dead_processes_are_removed_and_no_others(tmp_path: Path) -> None:
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        host = re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname())
        mine = temp_name(tmp_path / "x.pth")
        assert mine.name.startswith(f".x.tmp~{host}~{os.getpid()}~") and mine.suffix == ".pth"
        names = {
            "dead": f".9_checkpoint.tmp~{host}~{_dead_pid()}~0123abcd.pth",
            "live": f".8_checkpoint.tmp~{host}~{live.pid}~0123abcd.pth",
            "other_host": f".7_checkpoint.tmp~{host}x~{_dead_pid()}~0123abcd.pth",
            "mine": mine.name,  # this process: may be writing it in another thread
            "unknown": ".6_checkpoint.5f3a9c1d2e4b.tmp.pth",  # no writer in the name
        }
        for name in names.values():
            (tmp_path / name).write_bytes(b"half a checkpoint")
        with atomic_path(tmp_path / "last.pth") as tmp:
            tmp.write_bytes(b"whole")
        left = {p.name for p in tmp_path.iterdir()}
        assert left == {"last.pth", *(n for k, n in names.items() if k != "dead")}
    finally:
        live.kill()
        live.wait()


# ---------------------------------------------------------------------------------------
# Weights holding NaN, at test time


def test_test_py_refuses_weights_with_nan(test_script, capsys, tmp_path):
    data = make_dataset(tmp_path / "SYN")
    state = release_state_dict(tiny_mtnet())
    key = "module.backbone.stages.2.0.pwconv1.weight"
    state[key][0, 0] = float("nan")
    torch.save({"it": 1, "network": state}, tmp_path / "nan.pth")
    argv = ["--test_model", str(tmp_path / "nan.pth"), "--test_dataset", str(data),
            "--output_dir", str(tmp_path / "out"), "--device", "cpu", "--num_workers", "0",
            "--test_size", "64", "64"]  # fmt: skip
    line = one_error_line(test_script.main, argv, capsys, "test.py: error: ")
    assert "nan.pth: tensor backbone.stages.2.0.pwconv1.weight holds NaN" in line
    assert not list((tmp_path / "out").rglob("*.png"))


# ---------------------------------------------------------------------------------------
# Flow images of another size than their frames


def test_flow_of_another_size_is_resized_with_one_warning_per_video(tmp_path, caplog):
    make_video(tmp_path / "D", "v", stems(5), [], size=(40, 56))
    make_video(tmp_path / "D", "v", [], stems(5), size=(20, 28), seed=3)  # half-size flows
    spec = VideoSpec("v", tmp_path / "D" / "frame" / "v", tmp_path / "D" / "flow" / "v",
                     (".jpg",), (".jpg",))  # fmt: skip
    with caplog.at_level(logging.WARNING):
        clips = VideoClips(pair_video(spec, drop_tail=False), 2, (64, 64))
        items = [clips[i] for i in range(len(clips))]  # 3 clips, all with small flows
    assert all(item.flows.shape[-2:] == (64, 64) for item in items)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].startswith("video v: flow image ")
    assert "is 28x20 but its frame is 56x40" in warnings[0]


def test_training_files_are_checked_and_flow_sizes_warned_once_per_video(tmp_path, caplog):
    square_video(tmp_path, "a", 4)
    square_video(tmp_path, "b", 3)
    for path in (tmp_path / "flow" / "b").iterdir():  # video b: flows at half size
        with Image.open(path) as img:
            small = img.resize((img.width // 2, img.height // 2))
        small.save(path)
    videos = list_videos(tmp_path, 1)
    with caplog.at_level(logging.WARNING):
        assert check_files(videos) == 3 * (4 + 3)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith("video b: flow image ")
    (tmp_path / "mask" / "a" / "00002.png").write_bytes(b"<html>not an image</html>")
    with pytest.raises(InputError, match=r"mask/a/00002\.png: cannot read this image"):
        check_files(videos)


# ---------------------------------------------------------------------------------------
# Defaults that fit the machine, and pinned dependencies


def test_default_reading_processes_fit_the_cores(monkeypatch) -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert test_config.TestConfig().num_workers is None  # decided per device
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert test_config.default_num_workers(cuda) == 2
    assert test_config.default_num_workers(cpu) == 0  # the network's threads use both cores
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
    assert test_config.default_num_workers(cuda) == 4
    assert test_config.default_num_workers(cpu) == 4
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(5)), raising=False)
    assert test_config.default_num_workers(cpu) == 3
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert test_config.default_num_workers(cuda) == 1


def test_every_requirement_is_pinned() -> None:
    lines = (REPO / "requirements.txt").read_text().splitlines()
    packages = [ln.split("#")[0].strip() for ln in lines if ln.split("#")[0].strip()]
    assert packages and all(
        re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][0-9A-Za-z.]*", p) for p in packages
    )
    assert any(p.startswith("opencv-python-headless==4.") for p in packages)


def test_exit_status_is_zero_or_two_with_one_line(capsys) -> None:
    from util.errors import InputError, exit_status

    assert exit_status("tool", lambda: 4) == 0  # a work function's return value is no status

    def broken() -> None:
        raise InputError("x.png: cannot read this image; expected a PNG")

    assert exit_status("tool", broken) == 2
    assert capsys.readouterr().err == "tool: error: x.png: cannot read this image; expected a PNG\n"
    missing = Path("/nonexistent/file")
    with pytest.raises(OSError):
        exit_status("tool", missing.read_bytes)  # not a user error unless asked
    assert exit_status(None, missing.read_bytes, also=(OSError,)) == 2
    assert capsys.readouterr().err.startswith("error: ")
