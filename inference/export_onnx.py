"""Export MTNet to ONNX for one test size, with the clip length T dynamic (DESIGN.md §11).

    python -m inference.export_onnx --test_model saves/mtnet.pth --test_size 512 512 \
        --out mtnet.onnx [--encoder_name convnext-tiny]
    python -m inference.export_onnx --random_weights --test_size 128 128   # smoke export

The command of ``inference.runtime.onnx_export``, which says what the file holds.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from inference.runtime.onnx_export import export_onnx, weights_metadata
from inference.weights_args import add_weights_arguments, check_weights_arguments, load_cli_weights
from model.variants import check_test_size
from util.cli import ArgumentParser
from util.errors import exit_status
from util.fileio import check_output_file

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m inference.export_onnx", description=__doc__.splitlines()[0])
    add_weights_arguments(p, "export")
    p.add_argument(
        "--test_size", type=int, nargs=2, default=(512, 512), metavar=("H", "W"), help="input size"
    )
    p.add_argument("--out", default="mtnet.onnx", help="ONNX file to write (default: mtnet.onnx)")
    p.add_argument(
        "--no_optimize", action="store_true", help="skip the exporter's graph optimiser (faster)"
    )
    return p


def run(args: argparse.Namespace) -> Path:
    """Build the network with its weights and export it; every flag is checked first."""
    check_weights_arguments(args, "export")
    check_test_size(*args.test_size)
    out = check_output_file(args.out, "--out")
    weights = load_cli_weights(args)
    model = weights.model
    if weights.path is None:
        log.warning("exporting an UNTRAINED network (random weights): its masks are meaningless")
    metadata = weights_metadata(weights.path, weights.description, model.encoder_name)
    return export_onnx(
        model, out, tuple(args.test_size), optimize=not args.no_optimize, metadata=metadata
    )


def main(argv: list[str] | None = None) -> int:
    """Export; a user's mistake ends with one line on stderr and exit status 2."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return exit_status("export_onnx", lambda: run(build_parser().parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
