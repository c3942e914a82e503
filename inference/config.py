"""test.py's configuration: the paper's defaults (DESIGN.md §8) and the release's flag names."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from dataset.registry import BENCHMARKS, TASKS
from model.variants import ENCODERS, check_test_size
from util.choices import (
    AUTOCAST_PRECISIONS,
    FLOW_METHODS,
    PRECISIONS,
    RAFT_MODELS,
    RUNTIMES,
    check_flow_settings,
)
from util.cli import ArgumentParser
from util.errors import InputError
from util.fileio import check_output_dir

from .weights_args import RANDOM_SEED

if TYPE_CHECKING:
    import torch

    from util.flow import FlowSettings
    from util.layout import OutputLayout

# torch and the modules that load it import on use: ``test.py --help`` answers without them

AMP_DTYPES = AUTOCAST_PRECISIONS
DEFAULT_MODEL = "./saves/mtnet.pth"  # read when --test_model is not given (relative to cwd)


def default_test_model(video: bool) -> str | None:
    """The weights file to use when ``--test_model`` is not given.

    ``DEFAULT_MODEL``; with ``--video`` only while that file exists, else ``None``: a
    randomly initialised network (a smoke run of the pipeline; the run warns). Without
    ``--video`` a missing default file stays an error, as in the release.
    """
    if not video or Path(DEFAULT_MODEL).is_file():
        return DEFAULT_MODEL
    return None


def default_num_workers(device: torch.device) -> int:
    """Reading processes when ``--num_workers`` is not given.

    On CUDA: 4, or fewer on a machine with fewer cores (PyTorch's DataLoader warns when
    asked for more workers than cores). On the CPU: the cores that the network's threads
    leave free (none on 2 cores): a reading process that shares a core with the network
    stalls all its threads, while reading in the main process between clips costs little
    (``benchmarks/infer_speed.py`` compares end to end with the network alone).
    """
    import torch

    from util.cpu import usable_cpus

    if device.type == "cpu":
        return max(0, min(4, usable_cpus() - torch.get_num_threads()))
    return min(4, usable_cpus())


@dataclass
class TestConfig:
    """Everything a test run needs; ``None`` for ``drop_tail`` means the registry's default.

    ``test_model`` ``None``: no weights, a randomly initialised network (a smoke run:
    ``random_weights``, or ``--video`` without the default file). ``video``: a video file
    or a folder of frames to segment instead of the datasets.
    """

    test_model: str | None = DEFAULT_MODEL
    random_weights: bool = False
    task_name: str = "UVOS"
    test_dataset: list[str] = field(default_factory=lambda: ["DAVIS16"])
    root: str = "../data"
    output_dir: str = "./output"
    model_name: str = "MTNet"
    encoder_name: str | None = None  # None: read off the weights (convnext-tiny untrained)
    test_length: int = 9
    test_size: tuple[int, int] = (512, 512)
    device: str = "auto"
    amp: bool = False
    amp_dtype: str = "bf16"
    precision: str = "fp32"
    runtime: str = "torch"
    onnx: str | None = None
    channels_last: bool = False
    compile: bool = False
    int8_calibration: str | None = None
    num_workers: int | None = None  # None: default_num_workers(device)
    videos: list[str] | None = None
    drop_tail: bool | None = None
    skip_existing: bool = False
    video: str | None = None
    flow_method: str = "dis"
    raft_weights: str | None = None
    raft_model: str = "raft_large"
    raft_iters: int = 12
    no_memory_check: bool = False

    def validate(self) -> None:
        """Raise ``InputError`` for values the run cannot use."""
        if self.random_weights and self.test_model is not None:
            raise InputError("--random_weights with --test_model: give one or the other")
        check_flow_settings(self.flow_method, self.raft_model, self.raft_iters)
        if self.test_length < 1:
            raise InputError(f"--test_length {self.test_length}: expected a positive number")
        check_test_size(*self.test_size)
        if self.num_workers is not None and self.num_workers < 0:
            raise InputError(f"--num_workers {self.num_workers}: expected 0 or more")
        check_output_dir(self.output_dir, "--output_dir")
        if self.video is not None and self.flow_method == "raft":
            if self.raft_weights is None:
                raise InputError(
                    "--flow_method raft needs --raft_weights PATH, a local torchvision RAFT "
                    "state dict file (nothing is downloaded); or use --flow_method dis"
                )
            if not Path(self.raft_weights).is_file():
                raise InputError(f"{self.raft_weights}: no such RAFT weights file (--raft_weights)")

    def layout(self) -> OutputLayout:
        """The run's output folders."""
        from util.layout import OutputLayout

        return OutputLayout.of(self.output_dir, self.model_name, self.task_name)

    def flow_settings(self) -> FlowSettings:
        """How ``--video`` makes flow images (every flow option, passed on whole)."""
        from util.flow import FlowSettings

        return FlowSettings(self.flow_method, self.raft_weights, self.raft_model, self.raft_iters)


EXAMPLES = """
python test.py --video clip.mp4                     # your own video (or a folder of frames)
python test.py --test_model saves/mtnet.pth --test_dataset DAVIS16 --root ../data
python test.py --task_name VSOD --test_dataset DAVSOD ViSal --root ../data
python test.py --test_dataset DAVIS16 --videos blackswan cows --skip_existing
python test.py --test_dataset DAVIS16 --precision bf16 --compile   # faster, not faithful
torchrun --nproc_per_node 4 test.py --test_dataset DAVIS16 FBMS-59  # videos shared out
"""


def build_parser() -> argparse.ArgumentParser:
    """The release's flags plus this project's additions; defaults from ``TestConfig``."""
    d = TestConfig()
    p = ArgumentParser(
        description="MTNet inference: write UVOS masks or VSOD saliency maps for test videos.",
        examples=EXAMPLES,
    )
    data = p.add_argument_group("data")
    data.add_argument(
        "--test_dataset",
        nargs="+",
        metavar="NAME_OR_DIR",
        default=d.test_dataset,
        help=f"benchmark names ({', '.join(BENCHMARKS)}) or folders holding "
        "frame/<video>/ and flow/<video>/",
    )
    data.add_argument("--root", default=d.root, metavar="DIR", help="folder holding the benchmarks")
    data.add_argument(
        "--videos", nargs="+", default=d.videos, metavar="NAME", help="only these videos"
    )
    data.add_argument(
        "--drop_tail",
        action=argparse.BooleanOptionalAction,
        default=d.drop_tail,
        help="leave out the last frame of every video, as the release does (default: the "
        "dataset's rule)",
    )

    model = p.add_argument_group("weights and model")
    weights = model.add_mutually_exclusive_group()
    weights.add_argument(
        "--test_model",
        metavar="FILE",
        default=argparse.SUPPRESS,  # not given: default_test_model() decides
        help=f"model file (default: {DEFAULT_MODEL}; with --video and no such file, an "
        "untrained network for a smoke run of the pipeline)",
    )
    weights.add_argument(
        "--random_weights",
        action="store_true",
        help=f"an untrained network (seed {RANDOM_SEED}) instead of weights: a smoke run of "
        "the pipeline, the masks are meaningless",
    )
    model.add_argument(
        "--encoder_name",
        default=d.encoder_name,
        choices=ENCODERS,
        help="variant (default: read off the weights file; convnext-tiny untrained)",
    )
    model.add_argument(
        "--test_length", type=int, default=d.test_length, metavar="T", help="frames per clip"
    )
    model.add_argument(
        "--test_size",
        type=int,
        nargs=2,
        default=d.test_size,
        metavar=("H", "W"),
        help="network input size (multiples of 64)",
    )
    model.add_argument("--device", default=d.device, help="auto, cpu, cuda or cuda:N")

    out = p.add_argument_group("output")
    out.add_argument(
        "--task_name",
        default=d.task_name,
        choices=TASKS,
        help="UVOS: binary masks; VSOD: saliency maps",
    )
    out.add_argument(
        "--output_dir",
        default=d.output_dir,
        metavar="DIR",
        help="masks go to {output_dir}/{model_name}/{task}/{dataset}/{video}/{frame}.png "
        "({output_dir}/{model_name}/{task}_videos/{video}/ with --video), the run's record "
        "to test_config.json in {task}/ (with --video: beside the masks)",
    )
    out.add_argument(
        "--model_name", default=d.model_name, metavar="NAME", help="names the output folder"
    )
    out.add_argument(
        "--skip_existing",
        action="store_true",
        help="skip videos a run of the same settings finished (a folder begun with other "
        "settings is refused)",
    )

    speed = p.add_argument_group("speed (fp32 on the torch runtime is the faithful default)")
    speed.add_argument(
        "--precision",
        default=d.precision,
        choices=PRECISIONS,
        help="the forward pass: fp32 (the faithful default; TF32 off on CUDA), tf32 (CUDA: "
        "PyTorch's GPU default, TF32 convolutions), bf16 or fp16 (CUDA) autocast, int8 (CPU: "
        "Linear layers dynamically quantised), int8_static (CPU: the same with calibrated "
        "ranges, --int8_calibration, --compile)",
    )
    speed.add_argument("--amp", action="store_true", help="autocast on CUDA (ignored on the CPU)")
    speed.add_argument("--amp_dtype", default=d.amp_dtype, choices=AMP_DTYPES, help="with --amp")
    speed.add_argument(
        "--runtime",
        default=d.runtime,
        choices=RUNTIMES,
        help="torch, or onnxruntime (fp32 on the CPU; needs --onnx or exports one on the fly)",
    )
    speed.add_argument(
        "--onnx",
        default=d.onnx,
        metavar="FILE",
        help="mtnet.onnx for --runtime onnxruntime (python -m inference.export_onnx); default: "
        "exported once into {output_dir}/{model_name}/onnx/ and reused",
    )
    speed.add_argument("--channels_last", action="store_true", help="torch runtime option")
    speed.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile with freezing for --test_length clips (minutes to compile; not int8)",
    )
    speed.add_argument(
        "--int8_calibration",
        default=d.int8_calibration,
        metavar="FILE",
        help="activation ranges for --precision int8_static (python -m inference.int8_static)",
    )
    speed.add_argument(
        "--num_workers",
        type=int,
        metavar="N",
        default=d.num_workers,
        help="reading processes (default: on CUDA 4, or the cores if fewer; on the CPU the "
        "cores the network's threads leave free, 0 on 2 cores)",
    )

    video = p.add_argument_group("video (instead of --test_dataset)")
    video.add_argument(
        "--video",
        default=d.video,
        metavar="FILE_OR_DIR",
        help="a video file or a folder of frames to segment instead of --test_dataset: frames "
        "and flows are made under {output_dir}/{model_name}/work/{video}/, an overlay video "
        "goes to {output_dir}/{model_name}/{task}_overlay/",
    )
    video.add_argument(
        "--flow_method",
        default=d.flow_method,
        choices=FLOW_METHODS,
        help="optical flow for --video: OpenCV DIS (no weights) or torchvision RAFT",
    )
    video.add_argument(
        "--raft_weights", default=d.raft_weights, metavar="FILE", help="RAFT state dict file"
    )
    video.add_argument(
        "--raft_model", default=d.raft_model, choices=RAFT_MODELS, help="RAFT variant"
    )
    video.add_argument(
        "--raft_iters", type=int, default=d.raft_iters, metavar="N", help="RAFT flow updates"
    )
    speed.add_argument(
        "--no_memory_check",
        action="store_true",
        help="run even when the clips' estimated memory (--test_size, --test_length) exceeds "
        "90%% of the memory available",
    )
    return p


def parse_config(argv: list[str] | None = None) -> TestConfig:
    """Command line -> validated ``TestConfig``."""
    args = vars(build_parser().parse_args(argv))
    if "test_model" not in args:
        video = args["video"] is not None
        args["test_model"] = None if args["random_weights"] else default_test_model(video)
    cfg = TestConfig(**{**args, "test_size": tuple(args["test_size"])})
    cfg.validate()
    return cfg
