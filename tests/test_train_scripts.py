"""train_s.sh and train_m.sh: both stages, in order, with the launcher settings passed on."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run(script: str, env: dict[str, str], *args: str) -> list[str]:
    """Run a script with ``echo`` as its launcher; the command lines it would run."""
    done = subprocess.run(
        ["bash", str(REPO / script), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip().splitlines()


def test_train_s_runs_pre_train_then_main_train_from_its_best(tmp_path):
    env = {"PYTHON": "echo", "EXP": str(tmp_path), "ENCODER_WEIGHTS": str(tmp_path / "none")}
    pre, main = _run("train_s.sh", env, "--root", "/data", "--resume")
    expected = f"train.py --stage pre_train --exp {tmp_path} --model_name MTNet"
    assert pre == f"{expected} --root /data --resume"
    assert main.startswith("train.py --stage main_train")
    assert f"--pretrain_model_path {tmp_path}/MTNet/pre_train/best.pth" in main
    assert main.endswith("--root /data --resume")


def test_train_m_passes_torchrun_settings(tmp_path):
    weights = tmp_path / "convnext.pth"
    weights.write_bytes(b"")
    env = {
        "TORCHRUN": "echo torchrun",
        "NPROC_PER_NODE": "8",
        "MAIN_NPROC_PER_NODE": "4",
        "NNODES": "2",
        "NODE_RANK": "1",
        "MASTER_ADDR": "node0",
        "MASTER_PORT": "1234",
        "ENCODER_WEIGHTS": str(weights),
        "MAIN_TRAIN_ARGS": "--max_iter 5",
    }
    pre, main = _run("train_m.sh", env, "--num_workers", "2")
    launcher = "--nnodes 2 --node_rank 1 --master_addr node0 --master_port 1234 train.py"
    assert pre.startswith(f"torchrun --nproc_per_node 8 {launcher} --stage pre_train")
    assert f"--encoder_weights {weights}" in pre and "--max_iter" not in pre
    assert main.startswith(f"torchrun --nproc_per_node 4 {launcher} --stage main_train")
    assert "--pretrain_model_path exp/MTNet/pre_train/best.pth --max_iter 5" in main
    assert pre.endswith("--num_workers 2") and main.endswith("--num_workers 2")
