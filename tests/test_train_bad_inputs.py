"""Training with broken inputs: flags, output folder, unreadable files, divergence.

Each case ends with one line naming the culprit and exit status 2 (no traceback), before
work starts where the problem can be seen then; a diverging run saves nothing non-finite.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import train as train_script
from model.weights import load_weights
from tests.conftest import tiny_mtnet
from tests.train_helpers import synthetic_root, tiny_args
from training.checkpoints import latest_checkpoint

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("train_py_test_sized")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    return synthetic_root(tmp_path_factory.mktemp("clips"))


def error_line(argv: list[str], capsys) -> str:
    assert train_script.main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [ln for ln in err.strip().splitlines() if "train.py: error: " in ln]
    assert len(lines) == 1 and lines[0].startswith("train.py: error: "), err[-2000:]
    assert err.strip().splitlines()[-1] == lines[0]
    return lines[0]


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["-lr", "nan"], "-lr nan: expected a positive number"),
        (["-lr=-1e-4"], "-lr -0.0001: expected a positive number"),
        (["-lr", "inf"], "-lr inf: expected a positive number"),
        (["--num_workers", "-1"], "--num_workers must be 0 or more"),
        (["--seed", "-3"], "--seed must be 0 or more"),
        (["--keep_checkpoints", "-1"], "--keep_checkpoints must be 0 or more"),
        (["--val_max_frames", "-2"], "--val_max_frames must be 0 or more"),
        (["--warm_up_steps", "-5"], "--warm_up_steps -5: expected 0 or more"),
        (["--eval_iter", "0"], "--eval_iter must be positive"),
        (["--device", "tpu"], "--device tpu: expected auto, cpu, cuda or cuda:N"),
    ],
)
def test_numeric_flags_are_checked_before_work(tmp_path, capsys, flags, expected):
    argv = ["--stage", "pre_train", "--root", str(tmp_path / "absent"), "--exp", str(tmp_path)]
    assert expected in error_line([*argv, *flags], capsys)
    assert list(tmp_path.iterdir()) == []  # nothing made


@pytest.mark.parametrize("where", ["file", "proc"])
def test_exp_folder_is_checked_before_work(data_root, tmp_path, capsys, where):
    (tmp_path / "file").write_text("x")
    exp = tmp_path / "file" if where == "file" else Path("/proc/mtnet_no_such_dir")
    line = error_line(tiny_args(data_root, exp), capsys)
    assert f"--exp {exp / 'MTNet' / 'pre_train'}:" in line


def test_a_file_that_is_not_an_image_stops_before_training(data_root, tmp_path, capsys):
    root = synthetic_root(tmp_path / "copy")
    bad = root / "val" / "flow" / "v2" / "00001.png"
    bad.write_bytes(b"\x00" * 100)  # found now, not at the first validation
    line = error_line(tiny_args(root, tmp_path / "exp", max_iter=2), capsys)
    assert str(bad) in line and "cannot read this image" in line
    run = tmp_path / "exp" / "MTNet" / "pre_train"
    assert not list(run.glob("*.pth")) and not (run / "images").exists()


def _cut(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])


def test_a_cut_off_frame_in_a_reading_process_is_one_line(tmp_path, capsys):
    root = synthetic_root(tmp_path)
    for frame in (root / "train" / "frame").rglob("*.jpg"):
        _cut(frame)  # the header is intact: only decoding finds it
    line = error_line(tiny_args(root, tmp_path / "exp", num_workers=1), capsys)
    assert "train/frame/" in line and "image file is truncated" in line


def test_a_cut_off_validation_mask_is_one_line(tmp_path, capsys):
    root = synthetic_root(tmp_path)
    _cut(root / "val" / "mask" / "v1" / "00001.png")
    line = error_line(tiny_args(root, tmp_path / "exp", max_iter=1, eval_iter=1), capsys)
    assert str(root / "val" / "mask" / "v1" / "00001.png") in line


def test_divergence_stops_at_the_iteration_and_saves_nothing_non_finite(
    data_root, tmp_path, capsys
):
    flags = {"lr": "1e8", "max_iter": 4, "eval_iter": 4}  # diverges at once
    line = error_line(tiny_args(data_root, tmp_path, **flags), capsys)
    assert line.startswith("train.py: error: iteration 2: the loss is nan; training diverged")
    assert "lower -lr 1e+08" in line
    run = tmp_path / "MTNet" / "pre_train"
    assert sorted(p.name for p in run.glob("*.pth")) == ["1_checkpoint.pth"]
    # --resume starts from the newest checkpoint, which holds finite weights
    assert latest_checkpoint(run) == run / "1_checkpoint.pth"
    assert load_weights(tiny_mtnet(), run / "1_checkpoint.pth") == 1


def test_divergence_stops_every_rank_together(data_root, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    flags = tiny_args(data_root, tmp_path, lr="1e8", max_iter=4, eval_iter=4)
    # each rank's stderr to a file of its own: lines written at once cannot interleave
    logs = tmp_path / "logs"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", "2", "--log_dir", str(logs), "--redirects", "2",
               str(REPO / "tests" / "train_test_sized.py"), *flags]  # fmt: skip
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    ranks = sorted(logs.glob("*/attempt_0/*/stderr.log"), key=lambda p: int(p.parent.name))
    assert [p.parent.name for p in ranks] == ["0", "1"]
    lines = [
        [ln for ln in p.read_text().splitlines() if ln.startswith("train.py: error: ")]
        for p in ranks
    ]
    assert lines[0] == lines[1] and len(lines[0]) == 1  # no rank waits for another
    assert lines[0][0].startswith("train.py: error: iteration 2: the loss")
    run = tmp_path / "MTNet" / "pre_train"
    assert sorted(p.name for p in run.glob("*.pth")) == ["1_checkpoint.pth"]


def test_non_finite_weights_after_a_step_stop_with_a_finite_loss() -> None:
    import torch

    from training.trainer import TrainingDiverged, _check_step
    from util.distributed import DistInfo

    info = DistInfo(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
    model = torch.nn.Linear(3, 2)
    _check_step(0.7, model, 5, 1e-4, info)  # finite: nothing happens
    with torch.no_grad():
        model.weight[1, 2] = float("inf")
    with pytest.raises(TrainingDiverged, match=r"^iteration 6: the weights' norm is inf; "):
        _check_step(0.7, model, 6, 1e-4, info)
