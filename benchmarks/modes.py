"""The ways of running the network that the benchmarks compare, by name."""

from __future__ import annotations

from dataclasses import dataclass


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


MODES = {
    m.name: m
    for m in (
        Mode("fp32"),
        Mode("bf16", "bf16"),
        Mode("int8", "int8"),
        Mode("fp32+channels_last", channels_last=True),
        Mode("bf16+channels_last", "bf16", channels_last=True),
        Mode("onnxruntime", runtime="onnxruntime"),
        Mode("fp32+compile", compile=True),
        Mode("bf16+compile", "bf16", compile=True),
    )
}
