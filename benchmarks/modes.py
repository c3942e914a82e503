"""The ways of running the network that the benchmarks compare, by name."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from inference.runtime import check_runtime
from util.errors import InputError


@dataclass(frozen=True)
class Mode:
    """One way of running the network: a precision, a runtime and torch options."""

    name: str
    precision: str = "fp32"
    runtime: str = "torch"
    channels_last: bool = False
    compile: bool = False

    def test_args(self) -> list[str]:
        """The test.py flags that run the network this way."""
        args = ["--precision", self.precision, "--runtime", self.runtime]
        args += ["--channels_last"] if self.channels_last else []
        return args + (["--compile"] if self.compile else [])

    @property
    def calibrated(self) -> bool:
        """Whether the mode needs a calibration file (int8_static)."""
        return self.precision == "int8_static"

    def runs_on(self, device: torch.device) -> bool:
        """Whether test.py would run this mode on ``device`` (fp16 and tf32: CUDA; int8 and
        onnxruntime: the CPU; int8 not compiled)."""
        try:
            check_runtime(
                self.runtime,
                self.precision,
                device,
                channels_last=self.channels_last,
                compile=self.compile,
                calibrated=self.calibrated,
            )
        except InputError:
            return False
        return True


MODES = {
    m.name: m
    for m in (
        Mode("fp32"),
        Mode("tf32", "tf32"),
        Mode("bf16", "bf16"),
        Mode("fp16", "fp16"),
        Mode("int8", "int8"),
        Mode("fp32+channels_last", channels_last=True),
        Mode("bf16+channels_last", "bf16", channels_last=True),
        Mode("fp16+channels_last", "fp16", channels_last=True),
        Mode("onnxruntime", runtime="onnxruntime"),
        Mode("fp32+compile", compile=True),
        Mode("bf16+compile", "bf16", compile=True),
        Mode("fp16+compile", "fp16", compile=True),
        Mode("int8_static+compile", "int8_static", compile=True),
    )
}
