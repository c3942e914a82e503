"""Static int8: the Linear layers quantised to int8 with activation ranges calibrated once
on real clips, for Inductor to compile (DESIGN.md §11).

Notation: T frames per clip, H x W the test size.

``int8`` (``inference.runtime.int8_dynamic``) measures each Linear input's range on every
call; here the ranges are measured ahead, on a few clips of real frames and flows, and
saved to a small calibration file. At run time the network is exported with T dynamic and
H x W fixed, quantised with those ranges (torchao's PT2E flow, x86 Inductor recipe: int8
weights per channel, activations per tensor in 7 bits), and compiled with Inductor's
freezing into oneDNN int8 kernels. Uncompiled, the quantised graph is slower than fp32, so
this precision runs compiled only; a video's shorter last clip runs the same quantised
graph uncompiled.

The calibration file is made by ``python -m inference.int8_static``.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from util.errors import InputError, setting
from util.fileio import atomic_path

log = logging.getLogger(__name__)

FORMAT = "mtnet-int8-calibration-1"
OBSERVER = "activation_post_process"  # the name PT2E gives its observer modules
MAX_CLIP = 64  # the longest clip the exported graph accepts


def needs_calibration() -> str:
    """The error of int8_static without its calibration (flags or parameters named as
    ``util.errors.setting`` does)."""
    return (
        f"{setting('precision', 'int8_static')} needs {setting('int8_calibration')} FILE "
        "(made by python -m inference.int8_static)"
    )


@dataclass(frozen=True)
class Calibration:
    """Activation ranges of the Linear layers' inputs, for one network and test size.

    Attributes:
        ranges: the observers' state (per quantised input: a histogram and its minimum
            and maximum, from which the range is chosen at conversion).
        size: the test size (H, W) the ranges were measured at, and the only one they serve.
        weights: what the weights were (a file's SHA-256, or a description).
        clips: names of the calibration clips.
        sha256: the calibration file's SHA-256 (empty before it is saved).
        path: the file it was read from, if any.
    """

    ranges: dict[str, Tensor]
    size: tuple[int, int]
    weights: str
    clips: tuple[str, ...]
    sha256: str = ""
    path: Path | None = None


def _quantizer():
    """The x86 Inductor quantiser, static int8 (activations in 7 bits), for ``nn.Linear``
    only."""
    import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as x86

    class LinearOnly(x86.X86InductorQuantizer):
        # The convolutions stay fp32 (as in int8): the fused patterns' annotation fails on
        # MTNet's graph ("Input partition has more than one output node"), and quantised
        # one by one they gain nothing over oneDNN's fp32 kernels (DESIGN.md §11). Skipped.
        def _annotate_conv2d_fusion_pattern(self, *args, **kwargs) -> None:
            return None

    # Activations in 7 bits (reduce_range), as PyTorch's x86 int8 recipes do for CPUs
    # without VNNI: there oneDNN sums pairs of 8-bit products in 16 bits, which saturate
    # and move the masks away from fp32's (DESIGN.md §11). One setting on every CPU keeps
    # the masks the same across machines.
    config = x86.get_default_x86_inductor_quantization_config(reduce_range=True)
    return LinearOnly().set_module_type_qconfig(nn.Linear, config)


def _observed(model: nn.Module, size: tuple[int, int]) -> torch.fx.GraphModule:
    """``model`` exported for ``[1, T, 3, H, W]`` inputs (T dynamic) with observers on the
    inputs of its Linear layers."""
    from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e

    if model.training:
        raise ValueError("quantise an eval-mode model (call model.eval())")
    h, w = size
    example = tuple(torch.zeros(1, 2, 3, h, w) for _ in range(2))
    clip = torch.export.Dim("T", min=1, max=MAX_CLIP)
    with torch.no_grad():
        program = torch.export.export(
            model, example, dynamic_shapes={"imgs": {1: clip}, "flows": {1: clip}}
        )
    return prepare_pt2e(program.module(), _quantizer())


def _ranges(observed: torch.fx.GraphModule) -> dict[str, Tensor]:
    """The observers' whole state: the activations' histograms (from which the x86 recipe
    chooses each range) and running minimum and maximum, and the weights' ranges."""
    return {k: v.clone() for k, v in observed.state_dict().items() if OBSERVER in k}


def calibrate(
    model: nn.Module,
    clips: Iterable[tuple[str, Tensor, Tensor]],
    size: tuple[int, int],
    weights: str,
) -> Calibration:
    """Measure the Linear inputs' ranges of ``model`` (eval, fp32) over ``clips``.

    Args:
        clips: ``(name, imgs, flows)`` with ``imgs, flows: [1, T, 3, H, W]`` normalised
            network inputs at ``size``.
        weights: what the weights are (recorded, and checked by test.py).
    """
    observed = _observed(model, size)
    names = []
    with torch.no_grad():
        for name, imgs, flows in clips:
            if tuple(imgs.shape[-2:]) != tuple(size):
                raise ValueError(f"{name}: clip of {tuple(imgs.shape[-2:])}, expected {size}")
            observed(imgs, flows)
            names.append(name)
    if not names:
        raise InputError("int8 calibration: no clips to calibrate on")
    ranges = _ranges(observed)
    if not all(torch.isfinite(v).all() for v in ranges.values()):
        raise InputError("int8 calibration: a layer saw no finite values (broken weights?)")
    return Calibration(ranges, (int(size[0]), int(size[1])), weights, tuple(names))


def quantize_static(model: nn.Module, calibration: Calibration) -> torch.fx.GraphModule:
    """``model`` quantised with ``calibration``'s ranges, uncompiled, on the CPU:
    ``[1, T, 3, H, W]`` x 2 -> ``[T, 1, H, W]`` at the calibration's H x W only.

    Raises ``InputError`` when the ranges do not fit the exported graph (a file made for
    another variant or another version of torch / torchao).
    """
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e

    observed = _observed(model, calibration.size)
    expected = set(_ranges(observed))
    misfit = InputError(
        f"{calibration.path or 'int8 calibration'}: its {len(calibration.ranges)} ranges "
        f"do not fit this network's {len(expected)} quantised inputs (made for another "
        "variant, or another torch/torchao version); calibrate again"
    )
    if set(calibration.ranges) != expected:
        raise misfit
    try:
        observed.load_state_dict(calibration.ranges, strict=False)
    except RuntimeError:  # a tensor of another shape
        raise misfit from None
    return convert_pt2e(observed)


def save_calibration(path: str | Path, calibration: Calibration) -> Calibration:
    """Write ``calibration`` (atomic); returns it with its file's SHA-256 and path."""
    record = {
        "format": FORMAT,
        "ranges": calibration.ranges,
        "size": list(calibration.size),
        "weights": calibration.weights,
        "clips": list(calibration.clips),
        "torch": str(torch.__version__),
    }
    buffer = io.BytesIO()
    torch.save(record, buffer)
    data = buffer.getvalue()
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    return Calibration(calibration.ranges, calibration.size, calibration.weights,
                       calibration.clips, sha, path)  # fmt: skip


def load_calibration(path: str | Path) -> Calibration:
    """Read a file of ``save_calibration``; ``InputError`` (one line) naming it otherwise."""
    path = Path(path)
    if not path.is_file():
        raise InputError(
            f"{path}: no such int8 calibration file (make one with python -m inference.int8_static)"
        )
    data = path.read_bytes()
    try:
        record = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many types for a file it cannot read
        raise InputError(
            f"{path}: not a readable int8 calibration file ({type(exc).__name__})"
        ) from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise InputError(
            f"{path}: not an int8 calibration file of {FORMAT} (python -m inference.int8_static)"
        )
    return Calibration(
        dict(record["ranges"]),
        (int(record["size"][0]), int(record["size"][1])),
        str(record["weights"]),
        tuple(record["clips"]),
        hashlib.sha256(data).hexdigest(),
        path,
    )


def calibration_clips(
    dataset: str, root: str, videos: list[str] | None, count: int, length: int, size
) -> Iterable[tuple[str, Tensor, Tensor]]:
    """The first clip of ``length`` frames of each of ``videos`` (default: the first
    ``count`` videos of the data set in name order), prepared as test.py prepares them."""
    from dataset.registry import resolve_benchmark
    from dataset.test_videos import VideoClips, pair_video

    bench = resolve_benchmark(dataset, root)
    listed = bench.video_names()  # one folder listing for the whole loop
    for name in videos or listed[:count]:
        if name not in listed:
            raise InputError(f"--videos {name}: no such video in {bench.frame_root}")
        video = pair_video(bench.video(name), drop_tail=bench.drop_tail)
        clip = next(iter(VideoClips(video, length, tuple(size))))
        yield f"{bench.name}/{name}/{clip.names[0]}", clip.imgs[None], clip.flows[None]
