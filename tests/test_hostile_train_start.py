"""Training start-up writes nothing until every check has passed and a resume has loaded.

A ``--resume`` that then failed on a damaged checkpoint had already rewritten the finished
run's ``config.json`` (and appended to its log); a run without data left a run folder.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import load_script
from tests.train_helpers import square_video, synthetic_root, tiny_args, tiny_config


def _one_line(train_script, argv, capsys) -> str:
    assert train_script.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_a_resume_from_a_damaged_checkpoint_changes_nothing(tmp_path, capsys) -> None:
    root, exp = synthetic_root(tmp_path), tmp_path / "exp"
    run_dir = tiny_config(root, exp).run_dir
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text('{"the finished run": true}\n')
    (run_dir / "train.log").write_text("the finished run's log\n")
    (run_dir / "2_checkpoint.pth").write_bytes(b"PK\x03\x04 damaged")
    before = _snapshot(run_dir)
    line = _one_line(load_script("train.py"), tiny_args(root, exp, resume=True), capsys)
    assert "checkpoint" in line and "2_checkpoint.pth" in line
    assert _snapshot(run_dir) == before
    assert sorted(p.name for p in run_dir.iterdir()) == sorted(before)


def test_a_run_without_data_leaves_nothing(tmp_path, capsys) -> None:
    root, exp = tmp_path / "data", tmp_path / "exp"
    (root / "train").mkdir(parents=True)
    square_video(root / "val", "v1", 4)
    _one_line(load_script("train.py"), tiny_args(root, exp), capsys)
    assert not exp.exists()


def test_a_run_with_a_broken_validation_file_leaves_nothing(tmp_path, capsys) -> None:
    root, exp = synthetic_root(tmp_path), tmp_path / "exp"
    (root / "val" / "frame" / "v1" / "00001.jpg").write_bytes(b"not an image")
    line = _one_line(load_script("train.py"), tiny_args(root, exp), capsys)
    assert "00001.jpg" in line
    assert not exp.exists()


def test_the_start_up_lines_still_reach_train_log(tmp_path, capsys) -> None:
    root, exp = synthetic_root(tmp_path), tmp_path / "exp"
    assert load_script("train.py").main(tiny_args(root, exp, max_iter=1, eval_iter=1)) == 0
    log = (tiny_config(root, exp).run_dir / "train.log").read_text()
    start = log.index("starts from random weights")
    assert start < log.index("training videos") < log.index("config:") < log.index("finished 1")
