"""Synthetic clip datasets and tiny training configurations for the training tests.

The runs train the test-sized network (``model.variants.TEST_VARIANT``): ``tiny_config``
names it, and ``config_of_test_network`` stands in for ``config_from_args`` where train.py
itself parses the flags (``train_py_test_sized`` in this process, ``train_test_sized.py``
in others).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from model.variants import TEST_VARIANT
from training import config
from training.config import TrainConfig


def square_video(
    root: Path,
    name: str,
    frames: int,
    size: tuple[int, int] = (96, 80),
    flows: int | None = None,
    seed: int = 0,
) -> None:
    """Write a video whose frame, flow and mask show the same moving square.

    Frames are noisy grey with a bright square; flows are a colour gradient with the square
    in a fixed colour; masks are 255 on the square. ``flows`` defaults to ``frames - 1``.
    """
    rng = np.random.default_rng(seed)
    width, height = size
    flows = frames - 1 if flows is None else flows
    for sub in ("frame", "flow", "mask"):
        (root / sub / name).mkdir(parents=True, exist_ok=True)
    for i in range(frames):
        x, y = 20 + 3 * i, 18 + 2 * i
        square = np.zeros((height, width), dtype=bool)
        square[y : y + 30, x : x + 24] = True
        frame = rng.integers(0, 90, (height, width, 3), dtype=np.uint8)
        frame[square] = (230, 200, 40)
        Image.fromarray(frame).save(root / "frame" / name / f"{i:05d}.jpg", quality=95)
        Image.fromarray(square.astype(np.uint8) * 255).save(root / "mask" / name / f"{i:05d}.png")
        if i < flows:
            flow = np.zeros((height, width, 3), dtype=np.uint8)
            flow[..., 0] = np.linspace(0, 120, width, dtype=np.uint8)[None]
            flow[..., 2] = np.linspace(0, 120, height, dtype=np.uint8)[:, None]
            flow[square] = (250, 60, 180)
            Image.fromarray(flow).save(root / "flow" / name / f"{i:05d}.png")


def synthetic_root(tmp: Path) -> Path:
    """``tmp/data`` with ``train`` (3 videos, one too short) and ``val`` (2 videos)."""
    root = tmp / "data"
    square_video(root / "train", "a", 6, seed=1)
    square_video(root / "train", "b", 5, seed=2)
    square_video(root / "train", "c", 4, seed=3)
    square_video(root / "train", "tiny", 2, seed=4)
    square_video(root / "val", "v1", 4, seed=5)
    square_video(root / "val", "v2", 3, seed=6)
    return root


def tiny_args(root: Path, exp: Path, stage: str = "pre_train", **flags) -> list[str]:
    """``train.py`` arguments for a 64x64 CPU run over :func:`synthetic_root`'s data.

    Each keyword becomes ``--name value`` (``True``: a bare switch), overriding the
    defaults here: 2 steps, batch 1, validation at the end, a checkpoint every step.
    """
    values: dict = {
        "root": root,
        "train_dataset": "train",
        "val_dataset": "val",
        "exp": exp,
        "imsize": 64,
        "batch_size": 1,
        "max_iter": 2,
        "warm_up_steps": 0,
        "eval_iter": 2,
        "save_checkpoint_interval": 1,
        "print_every": 1,
        "log_image_interval": 1,
        "num_workers": 0,
        "device": "cpu",
        **flags,
    }
    argv = ["--stage", stage]
    for name, value in values.items():
        if value is True:
            argv.append(f"--{name}")
        elif value is not False:
            argv += [f"--{name}", str(value)]
    return argv


def config_of_test_network(
    argv: Sequence[str] | None = None, parse=config.config_from_args
) -> TrainConfig:
    """``config_from_args(argv)`` with the test-sized network."""
    return replace(parse(argv), encoder_name=TEST_VARIANT)


def tiny_config(root: Path, exp: Path, stage: str = "pre_train", **flags) -> TrainConfig:
    """The :class:`TrainConfig` of :func:`tiny_args`, with the test-sized network."""
    return config_of_test_network(tiny_args(root, exp, stage, **flags))
