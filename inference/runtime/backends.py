"""Backends: the network in one precision and runtime, behind one call (DESIGN.md §11).

Notation: T frames per clip, H x W the test size.

A backend maps one clip ``imgs, flows: [1, T, 3, H, W]`` (float32, normalised) to fp32
probabilities ``[T, 1, H, W]``. ``make_backend`` builds one from an eval-mode MTNet:

- ``runtime="torch"``, ``precision="fp32"``: the model itself, called under
  ``torch.inference_mode`` (the faithful default; on CUDA with TF32 off);
- ``"tf32"`` (CUDA only): the same with cuDNN convolutions in TF32, PyTorch's own
  default on a GPU (matrix products stay fp32 in both);
- ``"bf16"`` / ``"fp16"``: the same model under ``torch.autocast`` (fp16: CUDA only);
- ``"int8"``: a copy whose ``nn.Linear`` layers (ConvNeXt's pointwise layers, the
  attention projections and FFNs) are dynamically quantised to int8 (CPU only,
  ``inference.runtime.int8_dynamic``); the model passed in is left untouched;
- ``"int8_static"``: the same layers quantised with activation ranges calibrated ahead
  (``inference.runtime.int8_static``; CPU only, compiled only, at the calibration's H x W);
- ``channels_last`` (a copy in that memory format) and ``compile`` as options of the
  torch runtime. ``compile`` is ``torch.compile`` with Inductor's freezing for clips of
  one length (the run's ``--test_length``); clips of another length (a video's shorter
  last clip) run uncompiled (``inference.runtime.compile``, DESIGN.md §11);
- ``runtime="onnxruntime"``: an ``mtnet.onnx`` written by ``python -m
  inference.export_onnx`` (``inference.runtime.onnx_export``), run by onnxruntime's CPU
  execution provider with torch's thread count.
"""

from __future__ import annotations

import copy
import logging
import time
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import Tensor, nn

from util.amp import autocast
from util.choices import RUNTIMES
from util.cpu import cpu_description
from util.errors import InputError, setting

from .compile import FrozenCompiled
from .int8_dynamic import quantize_int8
from .int8_static import MAX_CLIP, Calibration, needs_calibration, quantize_static
from .precision import autocast_dtype, check_precision, cuda_tf32, tf32_mode

log = logging.getLogger(__name__)


class Backend(Protocol):
    """The network for one clip, in some precision and runtime, on ``device``."""

    device: torch.device

    def __call__(self, imgs: Tensor, flows: Tensor) -> Tensor:
        """``imgs, flows: [1, T, 3, H, W]`` float32 normalised -> fp32 probabilities
        ``[T, 1, H, W]`` (on the backend's device)."""
        ...

    def describe(self) -> dict[str, object]:
        """Provenance: precision, runtime, device, CPU, options and library versions."""
        ...


def prepare_model(
    model: nn.Module,
    precision: str,
    device: torch.device,
    *,
    channels_last: bool = False,
    calibration: Calibration | None = None,
) -> nn.Module:
    """The module a torch backend calls: ``model`` itself for fp32/bf16/fp16 without
    options, otherwise a transformed copy (int8, int8_static with ``calibration``,
    channels_last).

    Raises ``InputError`` for a precision ``device`` cannot run.
    """
    check_precision(precision, device)
    if precision == "int8":
        model = quantize_int8(model)
    if precision == "int8_static":
        if calibration is None:
            raise InputError(needs_calibration())
        model = quantize_static(model, calibration)
    if channels_last:
        if precision != "int8":  # quantize_int8 already returned a copy
            model = copy.deepcopy(model)
        model = model.to(memory_format=torch.channels_last)
    return model


def device_of(model: nn.Module) -> torch.device:
    """Where a module's parameters are (the CPU for one without parameters)."""
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


class TorchBackend:
    """An eval-mode MTNet run by PyTorch in ``precision`` on ``device``.

    Args:
        model: eval-mode MTNet, already on ``device``; it is not modified.
        precision: one of ``inference.runtime.precision.PRECISIONS``.
        device: where the model runs (default: where its parameters are).
        channels_last: see ``prepare_model``; compile: see ``FrozenCompiled``.
        compile_length: with ``compile``, the clip length the compiled network serves;
            clips of other lengths run uncompiled.
        calibration: the activation ranges of ``int8_static``, which fix H x W (``size``).
    """

    runtime = "torch"

    def __init__(
        self,
        model: nn.Module,
        precision: str = "fp32",
        device: torch.device | str | None = None,
        *,
        channels_last: bool = False,
        compile: bool = False,
        compile_length: int | None = None,
        calibration: Calibration | None = None,
    ) -> None:
        if model.training:
            raise ValueError("the backend needs an eval-mode model (call model.eval())")
        if compile and compile_length is None:
            raise ValueError("compile needs compile_length, the clip length to compile for")
        if precision == "int8_static" and (compile_length or 0) > MAX_CLIP:
            raise InputError(
                f"{setting('clip_length', compile_length, flag='--test_length')}: int8_static "
                f"serves clips of up to {MAX_CLIP}"
            )
        self.device = torch.device(device) if device is not None else device_of(model)
        self.precision = precision
        self.channels_last = channels_last
        self.compile = compile
        self.dtype = autocast_dtype(precision, self.device)  # checked once, not per clip
        self.tf32 = cuda_tf32(precision, self.device)
        self.model = prepare_model(
            model, precision, self.device, channels_last=channels_last, calibration=calibration
        )
        self.calibration = calibration if precision == "int8_static" else None
        self.size = self.calibration.size if self.calibration else None  # H x W it serves
        self.path = self.calibration.path if self.calibration else None
        self.compiled = FrozenCompiled(self.model) if compile else None
        self.compile_length = compile_length
        if compile:
            log.info(
                "the network compiles on its first clip of %d frames (minutes on a CPU, once "
                "per backend); clips of other lengths run uncompiled",
                compile_length,
            )

    def __call__(self, imgs: Tensor, flows: Tensor) -> Tensor:
        """``[1, T, 3, H, W]`` x 2 -> fp32 probabilities ``[T, 1, H, W]`` on ``device``."""
        imgs = imgs.to(self.device, non_blocking=True)
        flows = flows.to(self.device, non_blocking=True)
        with torch.inference_mode(), autocast(self.dtype, self.device), tf32_mode(self.tf32):
            prob = self._network_for(imgs.shape[1])(imgs, flows)
        return prob.float()

    def _network_for(self, length: int) -> nn.Module:
        """The compiled network for clips of ``compile_length`` frames, the eager one for
        any other length (or without ``compile``)."""
        if self.compiled is None or length != self.compile_length:
            return self.model
        return self.compiled

    def describe(self) -> dict[str, object]:
        info: dict[str, object] = {
            "precision": self.precision,
            "runtime": self.runtime,
            "device": str(self.device),
            "channels_last": self.channels_last,
            "compile": self.compile,
            **({"compile_length": self.compile_length} if self.compile else {}),
            **({"cudnn_tf32": self.tf32} if self.tf32 is not None else {}),
            **({"int8_calibration": self.calibration.sha256} if self.calibration else {}),
            "torch": torch.__version__,
        }
        if self.device.type == "cuda":
            info["gpu"] = torch.cuda.get_device_name(self.device)
        info["cpu"] = cpu_description()
        return info


class OnnxRuntimeBackend:
    """An ``mtnet.onnx`` (``python -m inference.export_onnx``) run by onnxruntime on the CPU.

    The file fixes H x W (its export's test size); T is a dynamic axis. Intra-op threads
    follow ``torch.get_num_threads()``.
    """

    runtime = "onnxruntime"
    precision = "fp32"
    device = torch.device("cpu")

    def __init__(self, onnx_path: str | Path) -> None:
        import onnxruntime as ort

        self.path = Path(onnx_path)
        if not self.path.is_file():
            raise InputError(
                f"{self.path}: no such ONNX file (write one with inference.export_onnx)"
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        start = time.perf_counter()
        try:
            self.session = ort.InferenceSession(
                str(self.path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(f"{self.path}: not a loadable ONNX model ({reason})") from None
        inputs = self.session.get_inputs()
        names = [i.name for i in inputs]
        if names != ["imgs", "flows"]:
            raise InputError(f"{self.path}: inputs {names}; expected imgs, flows (an MTNet export)")
        self.size = tuple(inputs[0].shape[3:])
        self.threads = options.intra_op_num_threads
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        log.info(
            "onnxruntime %s session for %s (%dx%d, %d threads) in %.1f s",
            ort.__version__,
            self.path,
            *self.size,
            self.threads,
            time.perf_counter() - start,
        )

    def __call__(self, imgs: Tensor, flows: Tensor) -> Tensor:
        """``[1, T, 3, H, W]`` x 2 -> fp32 probabilities ``[T, 1, H, W]`` on the CPU."""
        if tuple(imgs.shape[3:]) != self.size:
            h, w = imgs.shape[3:]
            raise InputError(
                f"{self.path}: exported for {self.size[0]}x{self.size[1]} inputs, got {h}x{w}; "
                f"export again with --test_size {h} {w}"
            )
        feeds = {
            "imgs": np.ascontiguousarray(imgs.detach().cpu().numpy(), dtype=np.float32),
            "flows": np.ascontiguousarray(flows.detach().cpu().numpy(), dtype=np.float32),
        }
        (prob,) = self.session.run(["prob"], feeds)
        return torch.from_numpy(prob)

    def describe(self) -> dict[str, object]:
        import onnxruntime as ort

        return {
            "precision": self.precision,
            "runtime": self.runtime,
            "device": "cpu",
            "onnx_path": str(self.path),
            "onnx_metadata": self.metadata,
            "threads": self.threads,
            "onnxruntime": ort.__version__,
            "cpu": cpu_description(),
        }


def check_runtime(
    runtime: str,
    precision: str,
    device: torch.device | str | None,
    *,
    channels_last: bool = False,
    compile: bool = False,
    calibrated: bool = False,
) -> None:
    """``InputError`` (one line) for a runtime that cannot run these settings; cheap, so
    callers check before reading weights or exporting. ``calibrated``: int8_static's
    calibration is given."""
    if calibrated != (precision == "int8_static"):
        raise InputError(
            needs_calibration() if calibrated is False else
            f"{setting('int8_calibration')}: used by {setting('precision', 'int8_static')} only"
        )  # fmt: skip
    if runtime not in RUNTIMES:
        raise InputError(f"{setting('runtime', runtime)}: expected one of {', '.join(RUNTIMES)}")
    if runtime == "onnxruntime":
        if precision != "fp32":
            raise InputError(
                f"{setting('precision', precision)}: the onnxruntime runtime runs fp32 only"
            )
        if channels_last or compile:
            raise InputError(
                f"{setting('channels_last')} and {setting('compile')} are options of the torch "
                "runtime"
            )
        if device is not None and torch.device(device).type != "cpu":
            raise InputError(
                f"{setting('runtime', 'onnxruntime')} runs on the CPU, not on {device}"
            )
    else:
        if precision == "int8_static" and (channels_last or not compile):
            # uncompiled, the quantised graph runs reference kernels slower than fp32
            raise InputError(
                f"{setting('precision', 'int8_static')} runs compiled, without "
                f"{setting('channels_last')}: add {setting('compile', True)}"
            )
        if compile and precision == "int8":
            # the quantised Linear layers break the graph into pieces that recompile per
            # block, so compiling gains nothing over int8 alone (DESIGN.md §11)
            raise InputError(
                f"{setting('compile')} with {setting('precision', 'int8')}: the quantised "
                "layers break the compiled graph (no faster than int8 alone); use one or the other"
            )
        if device is not None:
            check_precision(precision, torch.device(device))


def make_backend(
    model: nn.Module | None,
    precision: str = "fp32",
    runtime: str = "torch",
    device: torch.device | str | None = None,
    *,
    channels_last: bool = False,
    compile: bool = False,
    compile_length: int | None = None,
    onnx_path: str | Path | None = None,
    calibration: Calibration | None = None,
) -> Backend:
    """The backend for a precision and runtime; ``InputError`` (one line) for a combination
    that cannot run.

    Args:
        model: eval-mode MTNet on ``device`` (torch runtime; unused by onnxruntime, may be None).
        precision: ``fp32``, ``tf32`` (CUDA), ``bf16``, ``fp16`` (CUDA) or ``int8`` (CPU).
        runtime: ``torch`` or ``onnxruntime`` (fp32 on the CPU, needs ``onnx_path``).
        device: the torch runtime's device (default: the model's).
        channels_last, compile, compile_length: torch runtime options (``TorchBackend``).
        onnx_path: the ``mtnet.onnx`` of the onnxruntime runtime.
        calibration: the ranges of ``int8_static`` (``inference.runtime.int8_static``).
    """
    check_runtime(
        runtime,
        precision,
        device,
        channels_last=channels_last,
        compile=compile,
        calibrated=calibration is not None,
    )
    if runtime == "onnxruntime":
        if onnx_path is None:
            raise InputError(
                f"{setting('runtime', 'onnxruntime')} needs an ONNX file, "
                f"{setting('onnx_path', flag='--onnx')} (python -m inference.export_onnx)"
            )
        return OnnxRuntimeBackend(onnx_path)
    if model is None:
        raise ValueError("the torch runtime needs a model")
    return TorchBackend(
        model,
        precision,
        device,
        channels_last=channels_last,
        compile=compile,
        compile_length=compile_length,
        calibration=calibration,
    )


def describe_line(info: dict[str, object]) -> str:
    """``describe()`` as one log line: ``precision fp32, runtime torch, device cpu, ...``."""
    return ", ".join(f"{k} {v}" for k, v in info.items() if k != "onnx_metadata")
