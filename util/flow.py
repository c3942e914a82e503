"""Optical flow images for MTNet: a folder of frames in, colour-wheel flow images out.

The flow from frame t to frame t+1 is rendered with the Middlebury colour wheel, normalised per
image by its largest motion magnitude (``torchvision.utils.flow_to_image``), and written as
``<out_dir>/<stem of frame t>.jpg`` (the DAVIS16 layout): a video of N frames gets N-1 flow
images and its last frame has none. Existing flow images are kept, so an interrupted run resumes,
unless they are stale: ``<out_dir>/.source.json`` records the name, byte size and modification
time of the two frames each flow was made from, and a flow whose frames changed since is made
again. Flows without a record (shipped with a dataset, e.g. FlowNet2 flow images) are kept.

Two methods: OpenCV's DIS (``dis``, the default; no weights) and torchvision's RAFT (``raft``,
``raft_large`` or ``raft_small``, weights only from a local state dict file; nothing is
downloaded), on the CPU or a GPU.

Command line (errors print one line and exit with status 2)::

    python -m util.flow --frames DIR --out DIR [--flow_method dis|raft] [--raft_weights PATH]
                        [--raft_model raft_large|raft_small] [--raft_iters N]
                        [--device auto|cpu|cuda[:N]]
    python -m util.flow --root DATA_ROOT [same options]

``--root`` takes every ``<root>/frame/<video>/`` and ``<root>/<split>/frame/<video>/`` and
writes ``<root>/flow/<video>/`` and ``<root>/<split>/flow/<video>/`` beside them.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torchvision.models import optical_flow
from torchvision.utils import flow_to_image
from tqdm import tqdm

from util import distributed
from util.checkpoint import CheckpointError, load_file, require_finite
from util.choices import FLOW_METHODS as METHODS
from util.choices import RAFT_MODELS, check_flow_settings, check_raft_model
from util.cli import ArgumentParser
from util.errors import InputError, exit_status
from util.fileio import check_no_links, check_output_dir, read_json, write_json
from util.image import list_images, read_rgb_array, write_image

log = logging.getLogger(__name__)

FLOW_SUFFIX = ".jpg"
RAFT_MIN_SIZE = 128  # torchvision RAFT refuses smaller inputs (its correlation pyramid)
# OpenCV's DIS (medium preset) refuses frames with a side under 8 pixels (its patch size) or
# with both sides under 12 (its coarsest scale): (shorter side, longer side).
DIS_MIN_SIDES = (8, 12)
RECORD_NAME = ".source.json"  # hidden: no frame, flow or video lister picks it up


class FlowError(InputError):
    """A problem with the flow tool's inputs: folders, images, weights, method or device."""


@dataclass(frozen=True)
class FlowSettings:
    """How flow images are made: ``method`` ``"dis"`` or ``"raft"`` (with a local
    ``raft_weights`` file for ``raft_model``, and ``raft_iters`` flow updates).

    Passed whole to everything that makes flow (``--video``, the predictor, ``python -m
    util.flow``, ``dataset.prepare``), so every setting its :meth:`record` names is the one
    used."""

    method: str = "dis"
    raft_weights: str | None = None
    raft_model: str = "raft_large"
    raft_iters: int = 12

    def __post_init__(self) -> None:
        # checked here, so that every maker of flow images refuses a bad value at once
        raft_iters = check_flow_settings(self.method, self.raft_model, self.raft_iters)
        object.__setattr__(self, "raft_iters", raft_iters)  # a NumPy integer as a Python int

    def record(self) -> dict[str, object]:
        """The settings that change the flow images (for records of what files were made
        from): the method, and for RAFT the weights file (resolved), model and updates."""
        if self.method != "raft":
            return {"method": self.method}
        weights = str(Path(self.raft_weights).resolve()) if self.raft_weights else None
        return {
            "method": "raft",
            "raft_weights": weights,
            "raft_model": self.raft_model,
            "raft_iters": self.raft_iters,
        }

    def estimator(
        self, device: str | torch.device = "cpu", model: torch.nn.Module | None = None
    ) -> FlowEstimator:
        """The flow estimator of these settings (RAFT loaded once, on ``device``; ``model``:
        a torchvision RAFT module to use instead of loading ``raft_weights``)."""
        return make_estimator(
            self.method, self.raft_weights, self.raft_model, device, model, self.raft_iters
        )


DEFAULT_FLOW = FlowSettings()


class FlowEstimator(Protocol):
    """Dense flow from ``image1`` to ``image2``, both RGB ``[H, W, 3]`` uint8 -> ``[H, W, 2]``
    float32 (x, y) displacement in pixels."""

    def __call__(self, image1: np.ndarray, image2: np.ndarray) -> np.ndarray: ...


def list_frames(frames_dir: str | os.PathLike) -> list[Path]:
    """Image files of a frame folder in frame order (``util.image.list_images``); an empty
    folder, or a file (a video: test.py decodes those), is a ``FlowError``."""
    if Path(frames_dir).is_file():
        raise FlowError(
            f"{frames_dir}: a file, not a folder of frames; for a video file use "
            f"python test.py --video {frames_dir} (it decodes the frames and makes their flows)"
        )
    frames = list_images(frames_dir)
    if not frames:
        raise FlowError(f"{frames_dir}: no frames; expected images (.jpg/.jpeg/.png/.bmp)")
    return frames


def flow_path(frame: Path, out_dir: Path) -> Path:
    """Where the flow from ``frame`` to the next frame goes: ``out_dir/<frame stem>.jpg``."""
    return out_dir / f"{frame.stem}{FLOW_SUFFIX}"


def source_stamp(frame: Path) -> list:
    """What a flow image depends on, for one of its two frames: name, byte size and
    modification time (ns)."""
    stat = frame.stat()
    return [frame.name, stat.st_size, stat.st_mtime_ns]


def read_record(out_dir: Path) -> dict[str, list]:
    """The source record of a flow folder: flow name -> the stamps of its two frames.

    A missing or unreadable record is empty (every flow in the folder then counts as one
    that came without a record, and is kept).
    """
    flows = read_json(out_dir / RECORD_NAME).get("flows")
    return flows if isinstance(flows, dict) else {}


def write_record(out_dir: Path, flows: dict[str, list]) -> None:
    write_json(out_dir / RECORD_NAME, {"version": 1, "flows": flows})


def render_flow(flow: np.ndarray) -> np.ndarray:
    """Colour-wheel picture of a flow field: ``[H, W, 2]`` float -> RGB ``[H, W, 3]`` uint8.

    Exactly ``torchvision.utils.flow_to_image`` (Middlebury wheel, normalised by the image's
    largest motion magnitude).
    """
    field = torch.from_numpy(np.ascontiguousarray(flow, dtype=np.float32)).permute(2, 0, 1)
    return flow_to_image(field).permute(1, 2, 0).numpy()


class DISFlow:
    """OpenCV's DIS optical flow (medium preset) on the grey-level frames; CPU only."""

    min_sides = DIS_MIN_SIDES
    label = "DIS"

    def __init__(self) -> None:
        self.dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)

    def __call__(self, image1: np.ndarray, image2: np.ndarray) -> np.ndarray:
        """RGB ``[H, W, 3]`` uint8 twice -> flow ``[H, W, 2]`` float32."""
        grey1 = cv2.cvtColor(image1, cv2.COLOR_RGB2GRAY)
        grey2 = cv2.cvtColor(image2, cv2.COLOR_RGB2GRAY)
        return self.dis.calc(grey1, grey2, None)


class RAFTFlow:
    """torchvision RAFT on any frame size: inputs scaled to [-1, 1] as torchvision's RAFT
    transforms do, replicate-padded to multiples of 8 and at least 128 (RAFT's smallest input),
    the flow cropped back to the frame."""

    def __init__(
        self, model: torch.nn.Module, device: torch.device | str = "cpu", num_flow_updates: int = 12
    ) -> None:
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)
        self.num_flow_updates = num_flow_updates

    def _to_input(self, image: np.ndarray) -> torch.Tensor:
        """RGB ``[H, W, 3]`` uint8 -> ``[1, 3, H, W]`` float in [-1, 1] on the device."""
        tensor = torch.from_numpy(image).to(self.device).permute(2, 0, 1)[None].float()
        return tensor / 127.5 - 1.0

    @torch.inference_mode()
    def __call__(self, image1: np.ndarray, image2: np.ndarray) -> np.ndarray:
        """RGB ``[H, W, 3]`` uint8 twice -> flow ``[H, W, 2]`` float32."""
        height, width = image1.shape[:2]
        pad_h, pad_w = (max(RAFT_MIN_SIZE, n + (-n % 8)) - n for n in (height, width))
        top, left = pad_h // 2, pad_w // 2
        padding = (left, pad_w - left, top, pad_h - top)
        x1 = F.pad(self._to_input(image1), padding, mode="replicate")
        x2 = F.pad(self._to_input(image2), padding, mode="replicate")
        flow = self.model(x1, x2, num_flow_updates=self.num_flow_updates)[-1]
        flow = flow[0, :, top : top + height, left : left + width]
        return flow.permute(1, 2, 0).cpu().numpy()


def resolve_device(device: str | torch.device) -> torch.device:
    """``--device`` value -> device, as everywhere in the project, with a ``FlowError``."""
    try:
        return distributed.resolve_device(str(device))
    except ValueError as error:
        raise FlowError(str(error)) from None


def load_raft(
    weights: str | os.PathLike, raft_model: str = "raft_large", device: str | torch.device = "cpu"
) -> torch.nn.Module:
    """Build torchvision's ``raft_model`` and load a local state dict file into it.

    Raises ``InputError`` for an unknown model name (``util.choices.check_raft_model``) and
    :class:`FlowError` (one-line message) for a missing file, a file that is not a
    weights-only PyTorch file, or weights of another architecture.
    """
    check_raft_model(raft_model)
    path = Path(weights)
    if not path.is_file():
        raise FlowError(f"RAFT weights file not found: {path}")
    try:
        state = load_file(path)  # weights_only=True, with the project's messages
    except CheckpointError as error:
        raise FlowError(str(error)) from None
    model = getattr(optical_flow, raft_model)(weights=None)
    expected = model.state_dict()
    if not isinstance(state, dict) or set(state) != set(expected):
        hint = f"make one: torch.save({raft_model}(weights='DEFAULT').state_dict(), PATH)"
        raise FlowError(f"{path} does not hold torchvision {raft_model} weights; {hint}")
    mismatched = [
        key
        for key, value in state.items()
        if not isinstance(value, torch.Tensor) or value.shape != expected[key].shape
    ]
    if mismatched:
        raise FlowError(f"{path}: {len(mismatched)} entries do not fit torchvision {raft_model}")
    try:
        require_finite(state, path)
    except CheckpointError as error:
        raise FlowError(str(error)) from None
    model.load_state_dict(state)
    return model.to(resolve_device(device))


def make_estimator(
    method: str = "dis",
    raft_weights: str | os.PathLike | None = None,
    raft_model: str = "raft_large",
    device: str | torch.device = "cpu",
    model: torch.nn.Module | None = None,
    num_flow_updates: int = 12,
) -> FlowEstimator:
    """The flow estimator for ``method``; RAFT takes ``model`` if given, else ``raft_weights``."""
    check_flow_settings(method, raft_model, num_flow_updates)
    if method == "dis":
        return DISFlow()
    device = resolve_device(device)
    if model is None:
        if raft_weights is None:
            raise FlowError(
                "RAFT needs --raft_weights PATH, a local torchvision RAFT state dict file "
                "(nothing is downloaded); or use --flow_method dis"
            )
        model = load_raft(raft_weights, raft_model, device)
    return RAFTFlow(model, device, num_flow_updates)


def flow_picture(
    estimator: FlowEstimator,
    image1: np.ndarray,
    image2: np.ndarray,
    name1: object = "frame 1",
    name2: object = "frame 2",
) -> np.ndarray:
    """The flow image from ``image1`` to ``image2`` (RGB ``[H, W, 3]`` uint8 each, of one
    size, else a ``FlowError`` naming both): estimated and rendered (:func:`render_flow`)."""
    if image1.shape != image2.shape:
        raise FlowError(
            f"frames of different sizes: {name1} {image1.shape[1]}x{image1.shape[0]}, "
            f"{name2} {image2.shape[1]}x{image2.shape[0]}"
        )
    check_flow_size(estimator, image1, name1)
    return render_flow(estimator(image1, image2))


def check_flow_size(estimator: FlowEstimator, image: np.ndarray, name: object) -> None:
    """``FlowError`` naming the frame when it is smaller than ``estimator`` takes (DIS: 8
    pixels on the shorter side and 12 on the longer, :data:`DIS_MIN_SIDES`); RAFT pads any
    size."""
    short, long = getattr(estimator, "min_sides", (1, 1))
    height, width = image.shape[:2]
    if min(height, width) < short or max(height, width) < long:
        method = getattr(estimator, "label", "this")
        raise FlowError(
            f"{name} is {width}x{height} pixels; {method} flow needs frames of at least "
            f"{short} pixels on each side and {long} on the longer (larger frames, or RAFT flow)"
        )


def flows_for_frames(
    frames: Sequence[Path], out_dir: Path, estimator: FlowEstimator, progress: bool = True
) -> list[Path]:
    """Write the flow images of consecutive frame pairs; keep those that already exist.

    Returns the N-1 flow paths, in frame order, for N frames.
    """
    paths = [flow_path(frame, out_dir) for frame in frames[:-1]]
    todo = _flows_to_make(frames, paths, out_dir)
    previous: tuple[int, np.ndarray] | None = None  # the last frame read: (index, image)
    for i in tqdm(todo, desc=out_dir.name, unit="flow", disable=not progress, leave=False):
        image1 = previous[1] if previous and previous[0] == i else read_rgb_array(frames[i])
        image2 = read_rgb_array(frames[i + 1])
        previous = (i + 1, image2)
        write_image(paths[i], flow_picture(estimator, image1, image2, frames[i], frames[i + 1]))
    log.info("%s: %d flows written, %d kept", out_dir, len(todo), len(paths) - len(todo))
    return paths


def _flows_to_make(frames: Sequence[Path], paths: list[Path], out_dir: Path) -> list[int]:
    """Indices of the flows to (re)make: missing ones, and those whose record says they
    were made from other frames than the present ones (those are deleted first).

    The record gets the present frames' stamps before any flow is written, so a run that
    is killed midway leaves missing flows (made next time), never stale ones. Flows
    without a record entry (shipped with a dataset) are kept as they are.
    """
    record = read_record(out_dir)
    todo, stale = [], []
    for i, path in enumerate(paths):
        stamps = [source_stamp(frames[i]), source_stamp(frames[i + 1])]
        known = record.get(path.name)
        if path.exists() and (known is None or known == stamps):
            continue
        if path.exists():
            stale.append(path)
        todo.append(i)
        record[path.name] = stamps
    if stale:
        log.info(
            "%s: %d flows were made from frames that changed since (first: %s); remade",
            out_dir, len(stale), stale[0].name,
        )  # fmt: skip
        for path in stale:
            path.unlink()
    if todo:
        write_record(out_dir, record)
    return todo


def compute_flows(
    frames_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    flow: FlowSettings = DEFAULT_FLOW,
    *,
    device: str | torch.device = "cpu",
    model: torch.nn.Module | None = None,
    progress: bool = True,
) -> list[Path]:
    """Flow images of one video: ``frames_dir/<stem>.<ext>`` -> ``out_dir/<stem>.jpg``.

    ``flow`` says how (DIS by default); RAFT uses ``model`` (a torchvision RAFT module) if
    given, else loads ``flow.raft_weights``. Returns the N-1 flow paths for N frames, written
    or kept. Raises :class:`FlowError` on bad inputs.
    """
    frames = list_frames(frames_dir)
    if Path(out_dir).resolve() == Path(frames_dir).resolve():
        raise FlowError(f"flow folder must differ from the frame folder: {frames_dir}")
    estimator = flow.estimator(device, model)
    if len(frames) < 2:
        log.warning("%s has a single frame: no flow to compute", frames_dir)
    return flows_for_frames(frames, Path(out_dir), estimator, progress)


def find_videos(root: str | os.PathLike) -> list[tuple[Path, Path]]:
    """Pairs (frame folder, flow folder) of a benchmark root.

    ``<root>/frame/<video>/`` -> ``<root>/flow/<video>/`` and
    ``<root>/<split>/frame/<video>/`` -> ``<root>/<split>/flow/<video>/``.
    """
    root = Path(root)
    if not root.is_dir():
        raise FlowError(f"data root not found: {root}")
    found = {p for pattern in ("frame/*", "*/frame/*") for p in root.glob(pattern) if p.is_dir()}
    if not found:
        raise FlowError(f"no <split>/frame/<video>/ or frame/<video>/ folders under {root}")
    return [(d, d.parent.parent / "flow" / d.name) for d in sorted(found)]


def compute_root_flows(
    root: str | os.PathLike,
    flow: FlowSettings = DEFAULT_FLOW,
    *,
    device: str | torch.device = "cpu",
    model: torch.nn.Module | None = None,
    progress: bool = True,
) -> list[Path]:
    """Flow images for every video of a benchmark root (see :func:`find_videos`).

    Same options as :func:`compute_flows`; the estimator is built once. Returns all flow paths.
    """
    videos = find_videos(root)
    estimator = flow.estimator(device, model)
    paths: list[Path] = []
    for frames_dir, out_dir in tqdm(videos, desc="videos", unit="video", disable=not progress):
        paths += flows_for_frames(list_frames(frames_dir), out_dir, estimator, progress)
    return paths


def check_flow_outputs(root: Path, frames_dir: Path, out_dir: Path, flag: str) -> None:
    """No symbolic link below ``root`` (the folder of ``flag``) on the way to the flow images
    of ``frames_dir`` and their record (``util.fileio.check_no_links``)."""
    outputs = [flow_path(frame, out_dir) for frame in list_frames(frames_dir)]
    check_no_links(root, [out_dir / RECORD_NAME, *outputs], flag)


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m util.flow``."""
    parser = ArgumentParser(
        prog="python -m util.flow",
        description="Flow images (flow t->t+1 named after frame t, .jpg) for MTNet.",
        examples="""
            python -m util.flow --frames frames/clip --out flows/clip
            python -m util.flow --root ../data/DAVIS16 --flow_method raft --raft_weights raft.pth
            python test.py --video clip.mp4   # a video file: test.py decodes it and makes flows
        """,
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--frames", type=Path, help="folder of one video's frames")
    where.add_argument("--root", type=Path, help="benchmark root: [<split>/]frame/<video>/")
    parser.add_argument("--out", type=Path, help="flow folder for --frames (required there)")
    parser.add_argument(
        "--flow_method", "--method", dest="method", choices=METHODS, default="dis",
        help="OpenCV DIS (no weights) or torchvision RAFT (as test.py's and dataset.prepare's "
        "--flow_method; --method is the same flag)",
    )  # fmt: skip
    parser.add_argument("--raft_weights", type=Path, help="torchvision RAFT state dict file")
    parser.add_argument(
        "--raft_model", choices=RAFT_MODELS, default="raft_large", help="RAFT variant"
    )
    parser.add_argument("--raft_iters", type=int, default=12, help="RAFT flow updates")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (RAFT)")
    parser.add_argument("--no_progress", action="store_true", help="hide progress bars")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 with a one-line error on bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.frames is not None and args.out is None:
        parser.error("--frames needs --out")
    if args.root is not None and args.out is not None:
        parser.error("--out goes with --frames; --root writes beside each frame folder")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    raft_weights = str(args.raft_weights) if args.raft_weights is not None else None
    options = {"device": args.device, "progress": not args.no_progress}

    def work() -> None:
        flow = FlowSettings(args.method, raft_weights, args.raft_model, args.raft_iters)
        if args.root is not None:
            for frames_dir, out_dir in find_videos(args.root):
                check_flow_outputs(args.root, frames_dir, out_dir, "--root")
            paths = compute_root_flows(args.root, flow, **options)
        else:
            check_output_dir(args.out, "--out")
            check_flow_outputs(args.out, args.frames, args.out, "--out")
            paths = compute_flows(args.frames, args.out, flow, **options)
        log.info("%d flow images in place", len(paths))

    return exit_status(None, work, also=(OSError,))


if __name__ == "__main__":
    sys.exit(main())
