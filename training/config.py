"""The training configuration: one dataclass, per-stage defaults (DESIGN.md §7), argparse.

Flag names follow the release (``-lr``, ``--batch_size``, ``--max_iter`` ...); flags left
out take the defaults of the chosen ``--stage``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from model.variants import ENCODERS, SIZE_MULTIPLE
from util.cli import ArgumentParser
from util.errors import InputError

# torch imports on use (util.distributed in validate): ``train.py --help`` answers without it

STAGES = ("pre_train", "main_train")
SCHEDULES = ("poly", "constant")

# DESIGN.md §7. Per-GPU batch sizes; the lr is not scaled with the number of GPUs.
STAGE_DEFAULTS: dict[str, dict[str, object]] = {
    "pre_train": {
        "lr": 1e-4,
        "batch_size": 4,
        "max_iter": 80_000,
        "warm_up_steps": 1_500,
        "lr_schedule": "poly",
        "eval_iter": 4_000,
        "save_checkpoint_interval": 1_000,
        "train_dataset": "YouTube2SEG/train",
    },
    "main_train": {
        "lr": 1e-4,
        "batch_size": 2,
        "max_iter": 10_000,
        "warm_up_steps": 0,
        "lr_schedule": "constant",
        "eval_iter": 1_000,
        "save_checkpoint_interval": 1_000,
        "train_dataset": "DAVIS16/train",
    },
}


@dataclass(frozen=True)
class TrainConfig:
    """Everything one training run needs; ``run_dir`` is ``{exp}/{model_name}/{stage}``."""

    stage: str
    lr: float
    batch_size: int
    max_iter: int
    warm_up_steps: int
    lr_schedule: str
    eval_iter: int
    save_checkpoint_interval: int
    train_dataset: str
    val_dataset: str = "DAVIS16/val"
    root: str = "../data"
    imsize: int = 512
    train_frames: int = 3
    encoder_name: str = "convnext-tiny"
    encoder_weights: str | None = None
    pretrain_model_path: str | None = None
    resume: bool = False
    exp: str = "exp"
    model_name: str = "MTNet"
    no_amp: bool = False
    num_workers: int = 4
    seed: int = 2023
    device: str = "auto"
    print_every: int = 50
    print_seconds: float = 60.0
    log_image_interval: int = 1_000
    keep_checkpoints: int = 3
    val_first_frame_only: bool = False
    val_videos: int = 0
    val_max_frames: int = 0

    @property
    def run_dir(self) -> Path:
        return Path(self.exp) / self.model_name / self.stage

    @property
    def train_root(self) -> Path:
        """``--train_dataset``'s folder (:func:`dataset_folder`)."""
        return dataset_folder(self.train_dataset, self.root)

    @property
    def val_root(self) -> Path:
        """``--val_dataset``'s folder (:func:`dataset_folder`)."""
        return dataset_folder(self.val_dataset, self.root)

    def check_datasets(self) -> None:
        """Raise ``InputError`` naming the places looked at when ``--train_dataset`` or
        ``--val_dataset`` has no ``frame/`` folder."""
        for flag, value in (
            ("--train_dataset", self.train_dataset),
            ("--val_dataset", self.val_dataset),
        ):
            places = dataset_places(value, self.root)
            if not any((place / "frame").is_dir() for place in places):
                looked = str(places[0] / "frame")
                if len(places) > 1:
                    looked += f" nor {places[1] / 'frame'} (from the working folder {Path.cwd()})"
                raise InputError(
                    f"{flag} {value}: no frame folder in the dataset root {looked}; expected "
                    "{frame,flow,mask}/<video>/ as python -m dataset.prepare writes them"
                )

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)

    def validate(self) -> None:
        """Raise ``InputError`` for settings the training loop cannot honour; every numeric
        flag is checked here, before any work starts."""
        if self.stage not in STAGES:
            raise InputError(f"--stage {self.stage}: expected one of {STAGES}")
        if self.lr_schedule not in SCHEDULES:
            raise InputError(f"--lr_schedule {self.lr_schedule}: expected one of {SCHEDULES}")
        if self.train_frames != 3:
            raise InputError("--train_frames: the §7 clip sampler draws exactly 3 frames")
        if self.imsize <= 0 or self.imsize % SIZE_MULTIPLE:
            raise InputError(f"--imsize {self.imsize}: must be a positive multiple of 64")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise InputError(f"-lr {self.lr}: expected a positive number (the paper uses 1e-4)")
        positive = ("batch_size", "max_iter", "eval_iter", "save_checkpoint_interval",
                    "print_every", "log_image_interval")  # fmt: skip
        for name in positive:
            if getattr(self, name) <= 0:
                raise InputError(f"--{name} must be positive, got {getattr(self, name)}")
        not_negative = ("num_workers", "seed", "keep_checkpoints", "val_videos",
                        "val_max_frames")  # fmt: skip
        for name in not_negative:
            if getattr(self, name) < 0:
                raise InputError(f"--{name} must be 0 or more, got {getattr(self, name)}")
        if not (math.isfinite(self.print_seconds) and self.print_seconds >= 0):
            raise InputError(f"--print_seconds {self.print_seconds}: expected 0 or more")
        from util.distributed import resolve_device

        try:
            resolve_device(self.device)
        except ValueError as err:
            raise InputError(str(err)) from None
        if self.seed >= 2**62:  # torch seeds are 64-bit; seed + rank + iteration must fit
            raise InputError(f"--seed {self.seed}: expected a number below 2**62")
        if not 0 <= self.warm_up_steps < self.max_iter:
            raise InputError(
                f"--warm_up_steps {self.warm_up_steps}: expected 0 or more and fewer than "
                f"--max_iter {self.max_iter}"
            )
        if self.pretrain_model_path is not None and not Path(self.pretrain_model_path).is_file():
            raise InputError(
                f"--pretrain_model_path {self.pretrain_model_path}: file not found; expected a "
                "model file (e.g. exp/MTNet/pre_train/best.pth), or leave the flag out to "
                "train without pre-training"
            )


def dataset_places(value: str, root: str | Path) -> list[Path]:
    """Where a ``--train_dataset`` / ``--val_dataset`` value may be, in order: an absolute
    path itself; else ``<root>/<value>``, then ``<value>`` from the working folder."""
    path = Path(value)
    return [path] if path.is_absolute() else [Path(root) / value, path]


def dataset_folder(value: str, root: str | Path) -> Path:
    """The first of :func:`dataset_places` holding a ``frame/`` folder; ``<root>/<value>``
    (or the absolute path) when none does."""
    places = dataset_places(value, root)
    return next((place for place in places if (place / "frame").is_dir()), places[0])


EXAMPLES = """
python train.py --stage pre_train --root ../data --encoder_weights saves/convnext_tiny_1k_224_ema.pth
python train.py --stage main_train --root ../data --pretrain_model_path exp/MTNet/pre_train/best.pth
python train.py --stage main_train --resume          # continue from the newest checkpoint
torchrun --nproc_per_node 8 train.py --stage pre_train   # one process per GPU (train_m.sh)
python -m dataset.prepare --help                     # lay out the training data first
"""


def stage_default(key: str) -> str:
    """``"default: 4 (pre_train), 2 (main_train)"`` (``"default: 1000, both stages"``): a
    flag's default in each stage."""
    values = {stage: STAGE_DEFAULTS[stage][key] for stage in STAGES}
    text = {stage: f"{v:g}" if isinstance(v, float) else str(v) for stage, v in values.items()}
    if len(set(text.values())) == 1:
        return f"default: {text[STAGES[0]]}, both stages"
    return "default: " + ", ".join(f"{text[stage]} ({stage})" for stage in STAGES)


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``train.py``; stage-dependent flags default to ``None`` (filled
    in by ``config_from_args``, their help names each stage's value)."""
    p = ArgumentParser(
        description="Train MTNet (DESIGN.md §7). Flags left out take the defaults of the "
        "chosen --stage.",
        examples=EXAMPLES,
    )

    def staged(group, *names: str, key: str, help: str, **kwargs) -> None:
        group.add_argument(*names, help=f"{help} ({stage_default(key)})", **kwargs)

    schedule = p.add_argument_group("stage and schedule")
    schedule.add_argument("--stage", choices=STAGES, required=True, help="training stage")
    staged(schedule, "-lr", "--lr", key="lr", type=float, help="base learning rate")
    staged(schedule, "--batch_size", key="batch_size", type=int, help="clips per process")
    staged(schedule, "--max_iter", key="max_iter", type=int, help="optimiser steps")
    staged(schedule, "--warm_up_steps", key="warm_up_steps", type=int,
           help="linear warm-up steps")  # fmt: skip
    staged(schedule, "--lr_schedule", key="lr_schedule", choices=SCHEDULES,
           help="learning rate schedule")  # fmt: skip
    schedule.add_argument(
        "--seed", type=int, default=2023, help="base seed (rank r uses seed + r for data)"
    )

    data = p.add_argument_group("data")
    staged(data, "--train_dataset", key="train_dataset", metavar="DIR",
           help="a name under --root or a folder's path")  # fmt: skip
    data.add_argument(
        "--val_dataset",
        default="DAVIS16/val",
        metavar="DIR",
        help="a name under --root or a folder's path",
    )
    data.add_argument("--root", default="../data", metavar="DIR", help="datasets root")
    data.add_argument(
        "--imsize", type=int, default=512, help="training and validation size (square)"
    )
    data.add_argument(
        "--train_frames", type=int, default=3, help="frames per training clip (must be 3)"
    )
    data.add_argument("--num_workers", type=int, default=4, help="DataLoader workers per process")

    weights = p.add_argument_group("model and starting weights")
    weights.add_argument(
        "--encoder_name", default="convnext-tiny", choices=ENCODERS, help="encoder variant"
    )
    weights.add_argument(
        "--encoder_weights", default=None, metavar="FILE",
        help="ImageNet ConvNeXt weights file (pre_train)",
    )  # fmt: skip
    weights.add_argument(
        "--pretrain_model_path", default=None, metavar="FILE",
        help="start from this model file, network only (train_s.sh passes the pre-train "
        "best.pth to main_train); without it: --encoder_weights or random weights",
    )  # fmt: skip
    weights.add_argument(
        "--resume", action="store_true", help="continue from the newest resume checkpoint"
    )

    val = p.add_argument_group("validation")
    staged(val, "--eval_iter", key="eval_iter", type=int, help="validate every N steps")
    val.add_argument("--val_first_frame_only", action="store_true",
                     help="score only frame 0 of each video, as the release does")  # fmt: skip
    val.add_argument(
        "--val_videos", type=int, default=0, help="validate on the first N videos (0: all)"
    )
    val.add_argument(
        "--val_max_frames", type=int, default=0, help="first N frames per video (0: all)"
    )

    out = p.add_argument_group("output and logging")
    out.add_argument("--exp", default="exp", metavar="DIR",
                     help="outputs go to {exp}/{model_name}/{stage}/")  # fmt: skip
    out.add_argument("--model_name", default="MTNet", metavar="NAME", help="names the run folder")
    staged(out, "--save_checkpoint_interval", key="save_checkpoint_interval", type=int,
           help="resume checkpoint every N steps")  # fmt: skip
    out.add_argument("--keep_checkpoints", type=int, default=3,
                     help="newest resume checkpoints kept (0: all)")  # fmt: skip
    out.add_argument("--print_every", type=int, default=50, help="log line every N steps")
    out.add_argument("--print_seconds", type=float, default=60.0,
                     help="and a log line when this many seconds passed without one (0: off)")  # fmt: skip
    out.add_argument(
        "--log_image_interval", type=int, default=1000, help="image grid every N steps"
    )

    device = p.add_argument_group("device")
    device.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    device.add_argument("--no_amp", action="store_true", help="no mixed precision on CUDA")
    return p


def config_from_args(argv: Sequence[str] | None = None) -> TrainConfig:
    """Parse ``argv`` and fill the unset stage-dependent flags with the stage's defaults."""
    args = vars(build_parser().parse_args(argv))
    for key, value in STAGE_DEFAULTS[args["stage"]].items():
        if args.get(key) is None:
            args[key] = value
    cfg = TrainConfig(**args)
    cfg.validate()
    return cfg
