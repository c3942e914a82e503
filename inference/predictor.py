"""MTNet for Python code: frames in, masks out, streamed clip by clip.

    from inference import MTNetPredictor
    from model import build_mtnet

    model = build_mtnet("convnext-tiny", weights="saves/mtnet.pth", device="auto")
    predictor = MTNetPredictor(model, task="UVOS", test_size=(512, 512), clip_length=9)
    for mask in predictor.segment(frames, flows):  # one uint8 [h, w] array per frame
        ...
    for name, mask in predictor.segment_video("clip.mp4"):  # a video file or a frame folder
        ...

Notation: T frames per clip (``clip_length``; the last clip of a video holds the rest),
H, W the test size, h, w a frame's own size.

Everything test.py does to a clip happens here, once: resizing and normalisation
(``dataset.test_videos.make_clip``), the forward pass in the chosen precision, the check
that the output is finite, and the post-processing (DESIGN.md §8). test.py reads the same
clips from files with a ``DataLoader`` and calls :meth:`MTNetPredictor.predict`, so its
PNGs equal the masks :meth:`MTNetPredictor.segment` yields for the same images. A video
goes through one pipeline, ``inference.video_input`` (frames decoded losslessly, flows made
with the predictor's ``FlowSettings``), for ``segment_video`` and ``test.py --video`` alike;
the flows ``segment`` computes for frames in memory are those files' pixels too, so
``segment(frames decoded from a video)`` equals ``test.py --video``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from dataset.registry import TASKS
from dataset.test_videos import Clip, PairedVideo, VideoClips, make_clip
from model import build_mtnet
from model.variants import check_test_size
from util.arguments import require_int, require_int_pair
from util.errors import InputError, setting
from util.flow import FlowSettings, flow_picture
from util.image import as_pil_rgb, jpeg_round_trip
from util.resources import check_clip_memory

from .postprocess import prob_to_mask, resize_probs
from .runtime import Backend, Calibration, device_of, load_calibration, make_backend
from .video_input import VideoInput

log = logging.getLogger(__name__)

Frame = np.ndarray | Image.Image
_END = object()


@dataclass(frozen=True)
class ClipResult:
    """What the network made of one clip: a mask per frame (uint8 ``[h, w]``), optionally the
    probability maps at the frames' sizes (float32 ``[h, w]``, before min-max normalisation),
    and the seconds spent in the forward pass."""

    masks: list[np.ndarray]
    probs: list[np.ndarray] | None
    seconds: float


class NonFiniteOutput(InputError):
    """The network produced NaN or infinity (broken weights or an overflowing precision)."""


class MTNetPredictor:
    """Segments videos with a built MTNet (see ``model.build_mtnet``).

    Args:
        model: the network; put in eval mode, on ``device`` (``None`` with the onnxruntime
            runtime).
        task: ``"UVOS"`` (binary masks, {0, 255}) or ``"VSOD"`` (saliency maps, 0..255).
        test_size: the network's input (H, W), multiples of 64; the paper's is (512, 512).
        clip_length: frames per forward pass (the paper's test clips: 9).
        device: where the network runs; default: where its parameters are.
        precision: ``"fp32"`` (the default and the faithful mode, TF32 off on CUDA);
            ``"tf32"`` (CUDA, cuDNN convolutions in TF32, PyTorch's default); ``"bf16"`` or
            ``"fp16"`` (CUDA) under autocast; ``"int8"`` (CPU) with dynamically quantised
            Linear layers; ``"int8_static"`` (CPU, with ``compile`` and ``int8_calibration``)
            with calibrated ranges.
        runtime: ``"torch"`` or ``"onnxruntime"`` (fp32, CPU, the ``onnx_path`` export).
        channels_last, compile: options of the torch runtime; ``compile`` specialises the
            network to clips of ``clip_length`` frames (shorter last clips run uncompiled).
        int8_calibration: a calibration file of ``python -m inference.int8_static`` (or its
            loaded ``Calibration``), for ``precision="int8_static"``.
        flow: how ``segment`` computes flow images when none are given, and how
            ``segment_video`` makes them (DIS by default).
        memory_check: refuse a ``test_size`` and ``clip_length`` whose clips would not fit
            in the memory available (``util.resources.check_clip_memory``); ``False`` skips
            the check.

    The precision and runtime plug in at one place, ``inference.runtime.make_backend``.
    """

    def __init__(
        self,
        model: nn.Module | None,
        task: str = "UVOS",
        test_size: tuple[int, int] = (512, 512),
        clip_length: int = 9,
        *,
        device: str | torch.device | None = None,
        precision: str = "fp32",
        runtime: str = "torch",
        onnx_path: str | os.PathLike | None = None,
        channels_last: bool = False,
        compile: bool = False,
        int8_calibration: str | os.PathLike | Calibration | None = None,
        flow: FlowSettings | None = None,
        memory_check: bool = True,
    ):
        if task not in TASKS:
            named = setting("task", task, flag="--task_name")
            raise InputError(f"{named}: expected one of {', '.join(TASKS)}")
        clip_length = require_int(clip_length, "clip_length", minimum=1, flag="--test_length")
        test_size = require_int_pair(test_size, "test_size")
        check_test_size(*test_size)
        if device is None:
            device = device_of(model) if model is not None else torch.device("cpu")
        if memory_check:
            check_clip_memory(
                test_size, clip_length, device, "test_size or clip_length", "memory_check=False"
            )
        if model is not None:
            model = model.eval().to(device)
        if int8_calibration is not None and not isinstance(int8_calibration, Calibration):
            int8_calibration = load_calibration(int8_calibration)
        self.backend: Backend = make_backend(
            model,
            precision,
            runtime,
            device,
            channels_last=channels_last,
            compile=compile,
            compile_length=clip_length,
            onnx_path=onnx_path,
            calibration=int8_calibration,
        )
        size = getattr(self.backend, "size", None)  # an ONNX export or int8 ranges fix H x W
        if size is not None and tuple(size) != tuple(test_size):
            raise InputError(
                f"{self.backend.path}: made for {size[0]}x{size[1]} inputs, not "
                f"{setting('test_size', tuple(test_size))}; export or calibrate again for that size"
            )
        self.device = self.backend.device
        self.task = task
        self.test_size = (int(test_size[0]), int(test_size[1]))
        self.clip_length = clip_length
        self.precision = precision
        self.flow = flow or FlowSettings()

    @classmethod
    def from_weights(
        cls,
        weights: str | os.PathLike,
        task: str = "UVOS",
        device: str | torch.device = "auto",
        **kwargs,
    ) -> MTNetPredictor:
        """A predictor for a weights file; its variant (tiny or small) is read off its keys."""
        model = build_mtnet(None, weights=weights, device=device)
        return cls(model, task, **kwargs)

    def describe(self) -> dict[str, object]:
        """What runs the network: precision, runtime, device, CPU, library versions."""
        return self.backend.describe()

    # --- one clip -------------------------------------------------------------------------

    def forward(self, imgs: Tensor, flows: Tensor) -> tuple[Tensor, float]:
        """``[T, 3, H, W]`` frames and flows -> fp32 probabilities ``[T, 1, H, W]`` and the
        seconds spent in the forward pass (the GPU synchronised before the clock stops)."""
        imgs = imgs.to(self.device, non_blocking=True)[None]
        flows = flows.to(self.device, non_blocking=True)[None]
        self._sync()
        start = time.perf_counter()
        prob = self.backend(imgs, flows)  # inference mode, precision and fp32 output inside
        self._sync()
        return prob, time.perf_counter() - start

    def predict(self, clip: Clip, *, with_probs: bool = False) -> ClipResult:
        """Masks of one clip (and the probability maps with ``with_probs``).

        Raises ``NonFiniteOutput`` naming the video and clip when the network's output holds
        NaN or infinity: every mask of that clip would be wrong.
        """
        prob, seconds = self.forward(clip.imgs, clip.flows)
        if not torch.isfinite(prob).all():
            raise NonFiniteOutput(
                f"video {clip.video}, clip {clip.index} (frames {clip.names[0]}..{clip.names[-1]}): "
                "the network's output is not finite; expected finite weights "
                "(check the weights file, or run in fp32)"
            )
        probs = resize_probs(prob, clip.sizes)
        masks = [prob_to_mask(p, self.task).cpu().numpy() for p in probs]
        kept = [p.cpu().numpy() for p in probs] if with_probs else None
        return ClipResult(masks, kept, seconds)

    # --- streams of frames ------------------------------------------------------------------

    def segment(
        self,
        frames: Iterable[Frame],
        flows: Iterable[Frame] | None = None,
        *,
        with_probs: bool = False,
        video: str = "video",
    ) -> Iterator[np.ndarray] | Iterator[tuple[np.ndarray, np.ndarray]]:
        """Masks of a stream of frames, one uint8 ``[h, w]`` array per frame, in order.

        Args:
            frames: RGB ``[h, w, 3]`` uint8 arrays (or PIL images), pulled lazily: the first
                mask comes after at most ``clip_length + 1`` frames were pulled, and memory
                does not grow with the stream.
            flows: flow images, one per frame or one fewer (the last frame then reuses the
                preceding flow, as test.py does); ``None``: computed between consecutive
                frames with ``self.flow`` (as ``--video`` writes them, JPEG included).
            with_probs: yield ``(mask, probability map)`` pairs, the map float32 ``[h, w]``
                at the frame's size before min-max normalisation.
            video: the name used in error messages.
        """
        pairs = _paired(frames, flows) if flows is not None else self._with_flows(frames, video)
        for index, batch in enumerate(_batched(pairs, self.clip_length)):
            names = [str(i) for i, _, _ in batch]
            clip = make_clip(
                video,
                index,
                names,
                [f for _, f, _ in batch],
                [fl for _, _, fl in batch],
                self.test_size,
            )
            result = self.predict(clip, with_probs=with_probs)
            if with_probs:
                yield from zip(result.masks, result.probs, strict=True)
            else:
                yield from result.masks

    def segment_video(
        self,
        path: str | os.PathLike,
        *,
        work_dir: str | os.PathLike | None = None,
        with_probs: bool = False,
    ) -> Iterator[tuple[str, np.ndarray]] | Iterator[tuple[str, np.ndarray, np.ndarray]]:
        """``(frame name, mask)`` for every frame of a video file or a folder of frames.

        Frames are decoded and flows computed into ``{work_dir}/work/{name}/`` by the
        pipeline of ``test.py --video`` (``inference.video_input``; a kept ``work_dir``
        makes reruns reuse the flows; default: a temporary folder, removed afterwards), so
        the masks equal test.py's.
        """
        with contextlib.ExitStack() as stack:
            if work_dir is None:
                work_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="mtnet-"))
            source = VideoInput.resolve(path, Path(work_dir) / "work")
            yield from self.segment_files(source.prepare(self.flow, self.device), with_probs)

    def segment_files(
        self, video: PairedVideo, with_probs: bool = False
    ) -> Iterator[tuple[str, np.ndarray]] | Iterator[tuple[str, np.ndarray, np.ndarray]]:
        """``(frame name, mask)`` (with ``with_probs``, ``(name, mask, probability map)``)
        for every frame of a video of frame and flow files, read clip by clip as test.py
        reads them (``dataset.test_videos.VideoClips``)."""
        for clip in VideoClips(video, self.clip_length, self.test_size):
            result = self.predict(clip, with_probs=with_probs)
            if with_probs:
                yield from zip(clip.names, result.masks, result.probs, strict=True)
            else:
                yield from zip(clip.names, result.masks, strict=True)

    # --- helpers ------------------------------------------------------------------------

    def _with_flows(
        self, frames: Iterable[Frame], video: str = "video"
    ) -> Iterator[tuple[int, Frame, np.ndarray]]:
        """Frames with flows computed between consecutive ones (the last reuses the
        preceding flow), each flow rendered and JPEG-encoded as ``util.flow`` writes it."""
        estimator = self.flow.estimator(self.device)
        previous_flow = None
        for i, frame, following in _with_next(frames):
            if following is _END:
                if previous_flow is None:
                    raise InputError("a single frame; expected two or more (motion)")
                yield i, frame, previous_flow
                return
            current = np.asarray(as_pil_rgb(frame, f"{video}: frame {i}"))
            nxt = np.asarray(as_pil_rgb(following, f"{video}: frame {i + 1}"))
            picture = flow_picture(
                estimator, current, nxt, f"{video}: frame {i}", f"{video}: frame {i + 1}"
            )
            previous_flow = jpeg_round_trip(picture)  # as util.flow writes it
            yield i, frame, previous_flow

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


def _with_next(items: Iterable) -> Iterator[tuple[int, object, object]]:
    """``(i, item, next item or _END)``, pulling one item ahead."""
    it = iter(items)
    current = next(it, _END)
    i = 0
    while current is not _END:
        following = next(it, _END)
        yield i, current, following
        current = following
        i += 1


def _paired(frames: Iterable[Frame], flows: Iterable[Frame]) -> Iterator[tuple[int, Frame, Frame]]:
    """``(i, frame, flow)``: flow i with frame i; the last frame may lack one and then
    reuses the preceding flow. Any other difference in count is an ``InputError``."""
    flow_it = iter(flows)
    previous = None
    for i, frame, following in _with_next(frames):
        flow = next(flow_it, _END)
        if flow is _END:
            if following is not _END or previous is None:
                raise InputError(
                    f"frame {i} has no flow image; expected one flow per frame or one fewer"
                )
            flow = previous
        previous = flow
        yield i, frame, flow
    if next(flow_it, _END) is not _END:
        raise InputError("more flow images than frames; expected one per frame or one fewer")


def _batched(items: Iterable, n: int) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch
