"""The weights options of the module commands that prepare one network ahead of test.py
(``python -m inference.export_onnx``, ``python -m inference.int8_static``).

    p = argparse.ArgumentParser(...)
    add_weights_arguments(p, "export")
    ...
    check_weights_arguments(args, "export")  # with the other flags, before any work
    weights = load_cli_weights(args)          # weights.model, .sha256, .description
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING

from util.errors import InputError

if TYPE_CHECKING:
    from torch import nn  # torch loads on use: test.py --help answers without it

# The untrained network (--random_weights here; test.py without weights) is build_mtnet's
# with this seed; records name it RANDOM_WEIGHTS where a weights file has its SHA-256.
RANDOM_SEED = 0
RANDOM_WEIGHTS = f"random (seed {RANDOM_SEED})"
# Where trained weights come from, for messages about missing or absent weights.
RELEASE_URL = "https://github.com/hy0523/MTNet"
WEIGHTS_SOURCE = (
    f"get mtnet.pth from the authors' repository {RELEASE_URL} and put it in saves/ "
    "(see saves/README.md)"
)


@dataclass(frozen=True)
class CliWeights:
    """The network of ``--test_model`` or ``--random_weights``, on the CPU, in eval mode.

    Attributes:
        model: the network.
        path: the weights file (``None`` for random weights).
        sha256: the file's SHA-256 (``None`` for random weights).
    """

    model: nn.Module
    path: str | None
    sha256: str | None

    @property
    def description(self) -> str:
        """What the weights are, for records: the file's SHA-256, or the random seed."""
        return self.sha256 or RANDOM_WEIGHTS


def add_weights_arguments(p: argparse.ArgumentParser, verb: str) -> None:
    """``--test_model FILE`` or ``--random_weights``, and ``--encoder_name``."""
    from model.variants import ENCODERS

    weights = p.add_mutually_exclusive_group()
    weights.add_argument("--test_model", help=f"weights file to {verb} (model file or checkpoint)")
    weights.add_argument(
        "--random_weights",
        action="store_true",
        help=f"{verb} a randomly initialised network (seed {RANDOM_SEED}): for testing only",
    )
    p.add_argument(
        "--encoder_name",
        default=None,
        choices=ENCODERS,
        help="variant (default: read off the weights file; convnext-tiny for random weights)",
    )


def check_weights_arguments(args: argparse.Namespace, verb: str) -> None:
    """``InputError`` (one line) when neither ``--test_model`` nor ``--random_weights``."""
    if args.test_model is None and not args.random_weights:
        raise InputError(f"--test_model: give the weights file to {verb} (or --random_weights)")


def load_cli_weights(args: argparse.Namespace) -> CliWeights:
    """The network the weights options name (strict load; ``InputError`` for a missing or
    foreign file)."""
    from model import build_mtnet
    from util.checkpoint import load_hashed_file

    if args.random_weights:
        return CliWeights(
            build_mtnet(args.encoder_name, device="cpu", seed=RANDOM_SEED), None, None
        )
    weights = load_hashed_file(args.test_model)  # one read: the hash names what is loaded
    model = build_mtnet(args.encoder_name, weights=weights, device="cpu")
    return CliWeights(model, str(args.test_model), weights.sha256)
