"""What training shows: a line at least every --print_seconds, rounded numbers, the new best
written, a progress bar over the validation frames."""

from __future__ import annotations

import logging
import time

import torch
from torch import nn

import training.validate as validate
from dataset.val_videos import ValClips
from model.weights import read_weights
from tests.train_helpers import synthetic_root
from training import trainer
from training.config import config_from_args
from util.distributed import DistInfo

CPU = DistInfo(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))


def _cfg(tmp_path, *extra: str):
    argv = ["--stage", "main_train", "--exp", str(tmp_path), "--device", "cpu", *extra]
    return config_from_args(argv)


def test_a_line_every_print_every_steps_and_when_a_minute_passed(tmp_path):
    cfg = _cfg(tmp_path)  # defaults: every 50 steps, and after 60 s without a line
    assert (cfg.print_every, cfg.print_seconds) == (50, 60.0)
    now = time.perf_counter()
    assert trainer._log_due(50, cfg, now, CPU)
    assert trainer._log_due(cfg.max_iter, cfg, now, CPU)
    assert not trainer._log_due(7, cfg, now, CPU)
    assert trainer._log_due(7, cfg, now - 61, CPU)  # a minute without a line
    off = _cfg(tmp_path, "--print_seconds", "0")
    assert not trainer._log_due(7, off, now - 3600, CPU)


class _Writer:
    def add_scalar(self, *args) -> None:
        pass


def test_the_log_line_rounds_its_numbers(tmp_path, caplog):
    cfg = _cfg(tmp_path)
    window = trainer._Window()
    window.add({"loss": 0.123456789, "main": 0.0987654321, "aux": 0.0246913578, "iou": 0.55556})
    with caplog.at_level(logging.INFO, logger="training.trainer"):
        trainer._log_window(window, 10, cfg, 1.23456e-4, CPU, _Writer())
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith(
        f"it 10/{cfg.max_iter} lr 1.23e-04 loss 0.1235 (main 0.09877 aux 0.02469) iou 0.5556 "
    )


def test_a_new_best_says_where_it_was_written(tmp_path, caplog, monkeypatch):
    cfg = _cfg(tmp_path)
    cfg.run_dir.mkdir(parents=True)
    model = nn.Linear(2, 1)
    scores = iter([0.75, 0.5])
    monkeypatch.setattr(trainer, "evaluate", lambda *args, **kwargs: next(scores))
    with caplog.at_level(logging.INFO, logger="training.trainer"):
        best = trainer._validate(cfg, CPU, model, None, 10, None, _Writer(), False)
        best = trainer._validate(cfg, CPU, model, None, 20, best, _Writer(), False)
    lines = [r.getMessage() for r in caplog.records]
    assert best == 0.75
    assert f"new best mean IoU 0.7500 at it 10: wrote {cfg.run_dir / 'best.pth'}" in lines
    assert sum("new best" in line for line in lines) == 1  # 0.5 is no better
    assert read_weights(cfg.run_dir / "best.pth")[1] == 10
    assert (cfg.run_dir / "best_10_0.7500.pth").is_file()


class _Empty(nn.Module):
    def forward(self, imgs, flows):
        return torch.zeros(imgs.shape[0] * imgs.shape[1], 1, *imgs.shape[-2:])


class _Bar:
    made: list[_Bar] = []

    def __init__(self, **kwargs) -> None:
        self.kwargs, self.count, self.closed = kwargs, 0, False
        _Bar.made.append(self)

    def update(self, n: int) -> None:
        self.count += n

    def close(self) -> None:
        self.closed = True


def test_validation_shows_a_bar_over_its_frames(tmp_path, monkeypatch):
    data = ValClips(synthetic_root(tmp_path) / "val", 64)
    frames = sum(clip.length for clip in data.clips)
    monkeypatch.setattr(validate, "tqdm", _Bar)
    _Bar.made.clear()
    validate.evaluate(_Empty(), data, torch.device("cpu"))
    (bar,) = _Bar.made
    assert bar.kwargs["total"] == frames == bar.count and bar.closed
    assert (bar.kwargs["desc"], bar.kwargs["unit"], bar.kwargs["disable"]) == (
        "validation",
        "frame",
        False,
    )
    validate.evaluate(_Empty(), data, torch.device("cpu"), progress=False)
    assert _Bar.made[-1].kwargs["disable"] is True
