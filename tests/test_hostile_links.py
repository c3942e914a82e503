"""No command writes outside the folder it was given, through a link inside that folder.

A symbolic link in the output tree named like a video made test.py write (and overwrite)
outside ``--output_dir``. Every writer now checks each path component below the folder it
was given (``util.fileio.check_no_links``) and refuses with one line naming the link.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from dataset.prepare import PrepareOptions, prepare_davis2016
from tests.conftest import load_script
from tests.synthetic_videos import make_dataset
from tests.test_prepare import make_davis
from tests.train_helpers import synthetic_root, tiny_args
from util.errors import InputError
from util.fileio import check_no_links
from util.flow import main as flow_main


def _one_line(main, argv, capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


def _outside(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    return outside


def test_check_no_links(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", _outside(tmp_path)
    (root / "a").mkdir(parents=True)
    os.symlink(outside, root / "a" / "b")
    check_no_links(root, [root / "a" / "c" / "x.png"], "--out")  # missing parts: fine
    with pytest.raises(
        InputError,
        match=rf"^{root / 'a' / 'b'}: a symbolic link inside --out {root} \(to {outside}\); "
        "expected real folders and files there",
    ):
        check_no_links(root, [root / "a" / "b" / "c" / "x.png"], "--out")
    os.symlink(root, tmp_path / "given")  # the folder given may itself be a link
    check_no_links(tmp_path / "given", [tmp_path / "given" / "a" / "x.png"], "--out")


def test_test_py_refuses_a_video_folder_that_links_outside(tmp_path, capsys) -> None:
    data, out, outside = make_dataset(tmp_path / "SYN"), tmp_path / "out", _outside(tmp_path)
    (out / "MTNet" / "UVOS" / "SYN").mkdir(parents=True)
    os.symlink(outside, out / "MTNet" / "UVOS" / "SYN" / "a")
    argv = ["--test_model", str(tmp_path / "absent.pth"), "--test_dataset", str(data)]
    line = _one_line(load_script("test.py").main, [*argv, "--output_dir", str(out)], capsys)
    assert line.startswith(
        f"test.py: error: {out / 'MTNet' / 'UVOS' / 'SYN' / 'a'}: a symbolic link"
    )
    assert list(outside.iterdir()) == []


def test_test_py_video_refuses_a_work_folder_that_links_outside(tmp_path, capsys) -> None:
    frames, out, outside = tmp_path / "clip", tmp_path / "out", _outside(tmp_path)
    frames.mkdir()
    for i in range(3):
        Image.new("RGB", (32, 24), (10 * i, 0, 0)).save(frames / f"{i:05d}.png")
    (out / "MTNet").mkdir(parents=True)
    os.symlink(outside, out / "MTNet" / "work")
    argv = ["--video", str(frames), "--output_dir", str(out), "--test_size", "64", "64"]
    line = _one_line(load_script("test.py").main, argv, capsys)
    assert f"{out / 'MTNet' / 'work'}: a symbolic link inside --output_dir" in line
    assert list(outside.iterdir()) == []


def test_visualize_refuses_a_link_below_save_root(tmp_path, capsys) -> None:
    data, save, outside = make_dataset(tmp_path / "SYN"), tmp_path / "vis", _outside(tmp_path)
    (save / "MTNet").mkdir(parents=True)
    os.symlink(outside, save / "MTNet" / "UVOS")
    argv = ["--vis_dataset", str(data), "--save_root", str(save), "--output_dir", str(tmp_path)]
    line = _one_line(load_script("visualize.py").main, argv, capsys)
    assert f"{save / 'MTNet' / 'UVOS'}: a symbolic link inside --save_root" in line


def test_util_flow_refuses_links_below_out_and_root(tmp_path, capsys) -> None:
    data, outside = make_dataset(tmp_path / "SYN"), _outside(tmp_path)
    out = tmp_path / "flows"
    out.mkdir()
    os.symlink(outside / "x.jpg", out / "00000.jpg")
    argv = ["--frames", str(data / "frame" / "a"), "--out", str(out), "--no_progress"]
    line = _one_line(flow_main, argv, capsys)
    assert f"{out / '00000.jpg'}: a symbolic link inside --out" in line
    os.rename(data / "flow", tmp_path / "flows_b")
    os.symlink(outside, data / "flow")
    line = _one_line(flow_main, ["--root", str(data), "--no_progress"], capsys)
    assert f"{data / 'flow'}: a symbolic link inside --root" in line
    assert list(outside.iterdir()) == []


def test_prepare_refuses_a_link_below_out(tmp_path) -> None:
    src, out, outside = make_davis(tmp_path / "src"), tmp_path / "data", _outside(tmp_path)
    (out / "DAVIS16" / "train").mkdir(parents=True)
    os.symlink(outside, out / "DAVIS16" / "train" / "flow")
    with pytest.raises(InputError, match=r"DAVIS16/train/flow: a symbolic link inside --out"):
        prepare_davis2016(src, out, PrepareOptions(progress=False))
    assert list(outside.iterdir()) == []


def test_train_refuses_a_link_below_exp(tmp_path, capsys) -> None:
    root, exp, outside = synthetic_root(tmp_path), tmp_path / "exp", _outside(tmp_path)
    exp.mkdir()
    os.symlink(outside, exp / "MTNet")
    line = _one_line(load_script("train.py").main, tiny_args(root, exp), capsys)
    assert f"{exp / 'MTNet'}: a symbolic link inside --exp" in line
    assert list(outside.iterdir()) == []
