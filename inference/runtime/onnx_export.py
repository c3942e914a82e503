"""ONNX export of MTNet for one test size, with the clip length T dynamic (DESIGN.md §11).

The command is ``python -m inference.export_onnx``. The file has inputs ``imgs, flows: [1, T, 3, H, W]`` (float32, normalised as in test.py)
and output ``prob: [T, 1, H, W]`` (the eval-mode probabilities), with T free (1..256) and
H x W fixed by ``--test_size``; a video's shorter last clip runs through the same file.
It is written by PyTorch's ``torch.export``-based exporter; nothing is downloaded. Its
metadata records the test size, the encoder and the weights file's SHA-256.
"""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from model.variants import check_test_size
from util.fileio import atomic_path

log = logging.getLogger(__name__)

MAX_CLIP = 256


def export_onnx(
    model: nn.Module,
    path: str | Path,
    size: tuple[int, int],
    *,
    example_clip: int = 2,
    optimize: bool = True,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write ``model`` (eval mode, CPU, fp32) as one self-contained ONNX file at ``path``.

    Args:
        size: H, W of the inputs (multiples of 64).
        example_clip: T of the traced example; at least 2 so that T stays symbolic.
        optimize: run the exporter's graph optimiser (constant folding, fewer nodes:
            faster session start; onnxruntime optimises either file at load).
        metadata: extra ``metadata_props`` entries.

    Returns:
        ``path``. The write is atomic.
    """
    if model.training:
        raise ValueError("export an eval-mode model (call model.eval())")
    h, w = size
    check_test_size(h, w)
    gen = torch.Generator().manual_seed(0)
    example = tuple(torch.randn(1, example_clip, 3, h, w, generator=gen) for _ in range(2))
    clip = torch.export.Dim("T", min=1, max=MAX_CLIP)
    start = time.perf_counter()
    with warnings.catch_warnings(), _quiet("onnx_ir", "onnxscript"):
        # both inputs share the axis T, which the exporter reports as a renaming warning
        warnings.filterwarnings("ignore", message=".*axis name.*will not be used")
        program = _export(model, example, clip, optimize)
    props = {"mtnet.test_size": f"{h}x{w}", "mtnet.torch": torch.__version__}
    props |= metadata or {}
    program.model.metadata_props.update(props)
    path = Path(path)
    with atomic_path(path) as tmp:
        program.save(tmp, external_data=False)
    log.info("wrote %s (%dx%d, T dynamic) in %.0f s", path, h, w, time.perf_counter() - start)
    return path


def weights_metadata(
    weights_file: str | Path | None, weights_id: str, encoder_name: str
) -> dict[str, str]:
    """The ``metadata_props`` that name an export's network: the weights file and its
    SHA-256 (``weights_id``), or an untrained network's description (``weights_id``), and
    the variant."""
    if weights_file is None:
        named = {"mtnet.weights": weights_id}
    else:
        named = {"mtnet.weights": str(weights_file), "mtnet.weights_sha256": weights_id}
    return named | {"mtnet.encoder_name": encoder_name}


def exported_weights(metadata: dict[str, str]) -> str | None:
    """The weights an export was made from, as ``weights_metadata`` recorded them (the
    SHA-256, or an untrained network's description); ``None`` for a file without them."""
    return metadata.get("mtnet.weights_sha256", metadata.get("mtnet.weights"))


@contextlib.contextmanager
def _quiet(*loggers: str) -> Iterator[None]:
    """Raise the given loggers to WARNING for the duration (the exporter's passes log INFO)."""
    saved = {name: logging.getLogger(name).level for name in loggers}
    for name in loggers:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def _export(model: nn.Module, example: tuple, clip: object, optimize: bool) -> object:
    """``torch.onnx.export``'s program (not yet saved) with T dynamic on both inputs."""
    return torch.onnx.export(
        model,
        example,
        input_names=["imgs", "flows"],
        output_names=["prob"],
        dynamic_shapes={"imgs": {1: clip}, "flows": {1: clip}},
        dynamo=True,
        optimize=optimize,
        verbose=False,
    )
