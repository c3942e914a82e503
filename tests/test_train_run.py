"""Whole training runs at 64x64 on the CPU: files, overfitting, resume, DDP (DESIGN.md §7)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import train as train_script
import training.trainer as trainer
from dataset.train_clips import TrainClips
from model import MTNet
from tests.train_helpers import synthetic_root, tiny_args, tiny_config
from training.config import config_from_args
from training.step import build_optimizer, train_step
from training.trainer import train
from util.checkpoint import load_file
from util.distributed import DistInfo
from util.errors import InputError

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("train_py_test_sized")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    return synthetic_root(tmp_path_factory.mktemp("clips"))


def _network(path: Path) -> dict[str, torch.Tensor]:
    return load_file(path)["network"]


def test_two_iterations_of_each_stage_write_the_expected_files(data_root, tmp_path):
    exp = tmp_path / "exp"
    pre = train(tiny_config(data_root, exp, "pre_train", val_max_frames=3))
    run = exp / "MTNet" / "pre_train"
    assert pre.it == 2 and pre.run_dir == run
    names = {p.name for p in run.iterdir()}
    assert {"config.json", "train.log", "tb", "images", "best.pth", "last.pth"} <= names
    assert {"1_checkpoint.pth", "2_checkpoint.pth"} <= names
    assert f"best_2_{pre.best_iou:.4f}.pth" in names
    assert sorted(p.name for p in (run / "images").iterdir()) == ["0000001.png", "0000002.png"]
    assert json.loads((run / "config.json").read_text())["stage"] == "pre_train"
    best = load_file(run / "best.pth")
    assert set(best) == {"it", "network"} and best["it"] == 2
    assert all(k.startswith("module.") for k in best["network"])
    assert "module.backbone.stages.0.0.dwconv.weight" in best["network"]  # release names
    ckpt = load_file(run / "2_checkpoint.pth")
    assert {"it", "network", "optimizer", "scaler", "rng"} <= set(ckpt) and ckpt["it"] == 2
    log_text = (run / "train.log").read_text()
    assert "it 2/2 lr" in log_text and "s/it eta" in log_text and "validation at it 2" in log_text

    flags = {"val_max_frames": 3, "save_checkpoint_interval": 2, "log_image_interval": 2}
    main = train(
        tiny_config(data_root, exp, "main_train", pretrain_model_path=run / "best.pth", **flags)
    )
    main_run = exp / "MTNet" / "main_train"
    assert main.it == 2 and (main_run / "best.pth").is_file() and (main_run / "last.pth").is_file()
    assert f"starts from {run / 'best.pth'}" in (main_run / "train.log").read_text()
    assert load_file(main_run / "2_checkpoint.pth")["optimizer"]["param_groups"][0]["lr"] == 1e-4


def test_a_given_pretrained_model_must_exist(data_root, tmp_path):
    with pytest.raises(InputError, match=r"--pretrain_model_path .*no\.pth: file not found"):
        tiny_config(data_root, tmp_path, "main_train", pretrain_model_path=tmp_path / "no.pth")


def _first_start(cfg, caplog) -> tuple[torch.nn.Module, str]:
    """The network a fresh run starts from, and what the log says about it."""
    info = DistInfo(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
    with caplog.at_level(logging.INFO, logger="training.trainer"):
        model = trainer._setup(cfg, info, use_amp=False).model
    return model, caplog.text


def test_main_train_without_pretraining_starts_from_encoder_weights(data_root, tmp_path, caplog):
    from torchvision.models import convnext_tiny

    torch.manual_seed(3)
    tv = convnext_tiny(weights=None)
    torch.save(tv.state_dict(), tmp_path / "tv.pth")
    # the full network: the ImageNet file is ConvNeXt-T's
    flags = {"encoder_weights": tmp_path / "tv.pth"}
    cfg = config_from_args(tiny_args(data_root, tmp_path, "main_train", **flags))
    assert cfg.pretrain_model_path is None
    model, text = _first_start(cfg, caplog)
    assert f"main_train starts from the ImageNet encoder weights {tmp_path / 'tv.pth'}" in text
    assert torch.equal(model.backbone.body.stem_0.weight, tv.features[0][0].weight)
    caplog.clear()
    _, text = _first_start(tiny_config(data_root, tmp_path, "main_train"), caplog)
    assert "main_train starts from random weights" in text


@pytest.mark.slow  # the full network: whether it learns is the point
def test_loss_is_finite_and_drops_when_overfitting_one_clip(data_root):
    clip = TrainClips(data_root / "train", imsize=64, seed=0)[(0, 0)]
    batch = {key: value[None] for key, value in clip.items()}
    torch.manual_seed(0)
    model = MTNet().train()
    optimizer = build_optimizer(model, 1e-4)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    losses = [
        train_step(model, optimizer, scaler, batch, torch.device("cpu"), False)[0]["loss"]
        for _ in range(12)
    ]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert sum(losses[-3:]) / 3 < 0.85 * losses[0]


class _Killed(Exception):
    pass


def test_resume_reproduces_an_uninterrupted_run(data_root, tmp_path, monkeypatch):
    # 4 steps crossing an epoch (3 videos, batch 1), with warm-up, drop path and augmentation.
    flags = {"max_iter": 4, "warm_up_steps": 1, "eval_iter": 4, "save_checkpoint_interval": 2}
    flags |= {"val_first_frame_only": True, "val_videos": 1, "log_image_interval": 100}
    whole = train(tiny_config(data_root, tmp_path / "a", **flags))

    save = trainer._checkpoint

    def save_then_die(cfg, info, it, *args):
        save(cfg, info, it, *args)
        if it == 2:
            raise _Killed  # as if SIGKILLed right after the checkpoint of step 2

    monkeypatch.setattr(trainer, "_checkpoint", save_then_die)
    with pytest.raises(_Killed):
        train(tiny_config(data_root, tmp_path / "b", **flags))
    monkeypatch.setattr(trainer, "_checkpoint", save)
    run_b = tmp_path / "b" / "MTNet" / "pre_train"
    assert [p.name for p in run_b.glob("*_checkpoint.pth")] == ["2_checkpoint.pth"]
    assert not list(run_b.glob(".*"))  # atomic writes leave no temporary files

    assert train_script.main(tiny_args(data_root, tmp_path / "b", resume=True, **flags)) == 0
    assert "resumed from" in (run_b / "train.log").read_text()
    run_a = tmp_path / "a" / "MTNet" / "pre_train"
    a, b = _network(run_a / "last.pth"), _network(run_b / "last.pth")
    for key in a:
        torch.testing.assert_close(b[key], a[key], atol=1e-5, rtol=0, msg=key)
    opt_a = load_file(run_a / "4_checkpoint.pth")["optimizer"]
    opt_b = load_file(run_b / "4_checkpoint.pth")["optimizer"]
    assert opt_a["param_groups"][1]["lr"] == opt_b["param_groups"][1]["lr"]
    assert whole.best_iou == pytest.approx(load_file(run_b / "4_checkpoint.pth")["best_iou"])


def test_torchrun_two_processes_stay_in_sync_and_only_rank0_writes(data_root, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    flags = tiny_args(data_root, tmp_path, val_max_frames=3, save_checkpoint_interval=2)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", "2", str(REPO / "tests" / "ddp_train_worker.py"),
               str(tmp_path), *flags]  # fmt: skip
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads((tmp_path / "result.json").read_text())
    assert report == {"max_diff": 0.0, "it": 2, "world_size": 2}
    assert not (tmp_path / "rank1").exists()
    run = tmp_path / "rank0" / "MTNet" / "pre_train"
    assert {"2_checkpoint.pth", "best.pth", "last.pth", "train.log"} <= {
        p.name for p in run.iterdir()
    }
    ckpt = load_file(run / "2_checkpoint.pth")
    assert ckpt["rng"]["world_size"] == 2 and len(ckpt["rng"]["ranks"]) == 2


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--stage", "pre_train", "--root", "{tmp}/absent"], "no frame folder in the dataset root"),
        (
            ["--stage", "main_train", "--pretrain_model_path", "{tmp}/x.pth"],
            "x.pth: file not found",
        ),
        (["--stage", "pre_train", "--imsize", "100"], "--imsize 100"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(tmp_path, capsys, extra, expected) -> None:
    import train as train_script

    argv = [a.replace("{tmp}", str(tmp_path)) for a in extra]
    argv += ["--exp", str(tmp_path / "exp"), "--device", "cpu", "--max_iter", "2000"]
    assert train_script.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("train.py: error: ") and expected in err[0]
