"""test.py's configuration: the paper's defaults (MTNET.md §8) and the release's flag names."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from dataset.registry import BENCHMARKS, TASKS
from util.errors import InputError

ENCODERS = ("convnext-tiny", "convnext-small")
AMP_DTYPES = ("bf16", "fp16")


@dataclass
class TestConfig:
    """Everything a test run needs; ``None`` for ``drop_tail`` means the registry's default."""

    test_model: str = "./saves/mtnet.pth"
    task_name: str = "UVOS"
    test_dataset: list[str] = field(default_factory=lambda: ["DAVIS16"])
    root: str = "../data"
    output_dir: str = "./output"
    model_name: str = "MTNet"
    encoder_name: str = "convnext-tiny"
    test_length: int = 9
    test_size: tuple[int, int] = (512, 512)
    device: str = "auto"
    amp: bool = False
    amp_dtype: str = "bf16"
    num_workers: int = 4
    videos: list[str] | None = None
    drop_tail: bool | None = None
    skip_existing: bool = False

    def validate(self) -> None:
        """Raise ``InputError`` for values the run cannot use."""
        if self.test_length < 1:
            raise InputError(f"--test_length {self.test_length}: expected a positive number")
        height, width = self.test_size
        if height < 64 or width < 64 or height % 64 or width % 64:
            raise InputError(
                f"--test_size {height} {width}: expected multiples of 64 (the paper uses 512 512)"
            )
        if self.num_workers < 0:
            raise InputError(f"--num_workers {self.num_workers}: expected 0 or more")


def build_parser() -> argparse.ArgumentParser:
    """The release's flags plus this project's additions; defaults from ``TestConfig``."""
    d = TestConfig()
    p = argparse.ArgumentParser(
        description="MTNet inference: write UVOS masks or VSOD saliency maps for test videos.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--test_model", default=d.test_model, help="model file")
    p.add_argument("--task_name", default=d.task_name, choices=TASKS, help="post-processing")
    p.add_argument(
        "--test_dataset",
        nargs="+",
        default=d.test_dataset,
        help=f"benchmark names ({', '.join(BENCHMARKS)}) or folders holding "
        "frame/<video>/ and flow/<video>/",
    )
    p.add_argument("--root", default=d.root, help="folder holding the benchmarks")
    p.add_argument(
        "--output_dir",
        default=d.output_dir,
        help="masks go to {output_dir}/{model_name}/{task}/{dataset}/{video}/{frame}.png",
    )
    p.add_argument("--model_name", default=d.model_name, help="names the output folder")
    p.add_argument("--encoder_name", default=d.encoder_name, choices=ENCODERS, help="variant")
    p.add_argument("--test_length", type=int, default=d.test_length, help="frames per clip")
    p.add_argument(
        "--test_size",
        type=int,
        nargs=2,
        default=d.test_size,
        metavar=("H", "W"),
        help="network input size (multiples of 64)",
    )
    p.add_argument("--device", default=d.device, help="auto, cpu, cuda or cuda:N")
    p.add_argument("--amp", action="store_true", help="autocast on CUDA (ignored on the CPU)")
    p.add_argument("--amp_dtype", default=d.amp_dtype, choices=AMP_DTYPES, help="with --amp")
    p.add_argument("--num_workers", type=int, default=d.num_workers, help="reading processes")
    p.add_argument("--videos", nargs="+", default=d.videos, help="only these videos")
    p.add_argument(
        "--drop_tail",
        action=argparse.BooleanOptionalAction,
        default=d.drop_tail,
        help="leave out frames without a flow of their own (None: the dataset's default)",
    )
    p.add_argument("--skip_existing", action="store_true", help="skip videos already written")
    return p


def parse_config(argv: list[str] | None = None) -> TestConfig:
    """Command line -> validated ``TestConfig``."""
    args = build_parser().parse_args(argv)
    cfg = TestConfig(**{**vars(args), "test_size": tuple(args.test_size)})
    cfg.validate()
    return cfg
