"""Numeric precisions of the network and what the CPU offers for them (DESIGN.md §8).

One table of autocast dtypes for training and inference alike, the CPU's vector
extensions read from ``/proc/cpuinfo`` (for logs, ``test_config.json`` and benchmarks),
and the autocast context of a precision on a device.

fp32 is the default and the faithful mode: on CUDA it turns TF32 (a 10-bit mantissa)
off for cuDNN convolutions, which PyTorch by default runs in TF32; ``tf32`` (CUDA) is that
default, convolutions in TF32. Matrix products stay fp32 in both, as by PyTorch's
default. bf16 and fp16 run under ``torch.autocast``; int8 is dynamic quantisation of the
Linear layers (see ``inference.backend``), int8_static the same layers with activation
ranges calibrated ahead (``inference.int8_static``).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path

import torch

from util.choices import AUTOCAST_PRECISIONS, PRECISIONS
from util.errors import InputError, setting

log = logging.getLogger(__name__)

AUTOCAST_DTYPES: dict[str, torch.dtype] = dict(
    zip(AUTOCAST_PRECISIONS, (torch.bfloat16, torch.float16), strict=True)
)

CPUINFO = Path("/proc/cpuinfo")

# cpuinfo flag -> the name used in descriptions; every key of cpu_capabilities()
CPU_FLAGS: dict[str, str] = {
    "avx2": "AVX2",
    "avx512f": "AVX-512",
    "avx512_bf16": "AVX-512 BF16",
    "amx_tile": "AMX",
    "amx_bf16": "AMX BF16",
    "amx_int8": "AMX INT8",
    "avx512_vnni": "AVX-512 VNNI",
    "avx_vnni": "AVX-VNNI",
}

# Environment variables that cap the instruction sets of PyTorch's own kernels, oneDNN,
# FBGEMM (int8) and MKL: set to AVX2, they make a newer CPU compute as an AVX2-only one.
ISA_LIMITS = (
    "ATEN_CPU_CAPABILITY",
    "ONEDNN_MAX_CPU_ISA",
    "DNNL_MAX_CPU_ISA",
    "FBGEMM_ENABLE_INSTRUCTIONS",
    "MKL_ENABLE_INSTRUCTIONS",
)
# oneDNN ISA names whose level computes bf16 (AVX512_CORE_BF16 and above, AMX, AVX10)
ONEDNN_BF16_WORDS = ("BF16", "FP16", "AMX", "AVX10", "ALL")


def parse_cpuinfo(text: str) -> tuple[str, dict[str, bool]]:
    """The first processor's model name and ``CPU_FLAGS`` presence from cpuinfo text.

    Missing lines give ``"unknown CPU"`` and all flags False.
    """
    model, flags = "unknown CPU", set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model == "unknown CPU":
            model = " ".join(value.split())
        elif key == "flags" and not flags:
            flags = set(value.split())
    return model, {flag: flag in flags for flag in CPU_FLAGS}


@functools.cache
def _read_cpuinfo() -> str | None:
    try:
        return CPUINFO.read_text()
    except OSError:
        return None


def cpu_capabilities(cpuinfo: str | None = None) -> dict[str, bool]:
    """Which of ``CPU_FLAGS`` the CPU has: ``{"avx2": True, "avx512_bf16": False, ...}``.

    Args:
        cpuinfo: text in ``/proc/cpuinfo``'s format; default: this machine's (all False
            where it cannot be read, e.g. not on Linux).
    """
    text = _read_cpuinfo() if cpuinfo is None else cpuinfo
    return parse_cpuinfo(text or "")[1]


def isa_limits(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The ``ISA_LIMITS`` variables set in ``environ`` (default: this process's)."""
    environ = os.environ if environ is None else environ
    return {name: environ[name] for name in ISA_LIMITS if environ.get(name)}


def has_native_bf16(
    caps: dict[str, bool] | None = None, environ: Mapping[str, str] | None = None
) -> bool:
    """True when the CPU computes bf16 natively (AVX-512 BF16 or AMX BF16) and oneDNN is
    not capped below the level that uses it (``ONEDNN_MAX_CPU_ISA``)."""
    caps = cpu_capabilities() if caps is None else caps
    limits = isa_limits(environ)
    cap = limits.get("ONEDNN_MAX_CPU_ISA") or limits.get("DNNL_MAX_CPU_ISA")
    allowed = cap is None or any(word in cap.upper() for word in ONEDNN_BF16_WORDS)
    return (caps["avx512_bf16"] or caps["amx_bf16"]) and allowed


def cpu_description(cpuinfo: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """One line for logs and provenance, e.g. ``"AMD EPYC; has AVX2, AVX-512, AVX-512 BF16,
    AVX-512 VNNI; lacks AMX, AMX BF16, AMX INT8, AVX-VNNI; torch ISA AVX512, 2 threads"``,
    ending with the ``ISA_LIMITS`` variables set in ``environ`` (default: this process's).
    """
    text = _read_cpuinfo() if cpuinfo is None else cpuinfo
    if not text:
        model, flags = "unknown CPU", "vector extensions unknown (no /proc/cpuinfo)"
    else:
        model, caps = parse_cpuinfo(text)
        have = [name for flag, name in CPU_FLAGS.items() if caps[flag]]
        lack = [name for flag, name in CPU_FLAGS.items() if not caps[flag]]
        flags = "; ".join(
            f"{word} {', '.join(names)}"
            for word, names in (("has", have), ("lacks", lack))
            if names
        )
    isa = torch.backends.cpu.get_cpu_capability()
    line = f"{model}; {flags}; torch ISA {isa}, {torch.get_num_threads()} threads"
    limits = isa_limits(environ)
    if limits:
        line += "; capped by " + ", ".join(f"{k}={v}" for k, v in limits.items())
    return line


def check_precision(precision: str, device: torch.device) -> None:
    """Raise ``InputError`` (one line) for a precision that cannot run on ``device``.

    fp16 autocast is for CUDA (on the CPU it is slower than fp32 and loses range), and so
    is tf32 (a GPU arithmetic); int8 dynamic quantisation has CPU kernels only. bf16 on a CPU without native
    support runs, slowly: ``autocast`` warns once.
    """
    named = setting("precision", precision)
    if precision not in PRECISIONS:
        raise InputError(f"{named}: expected one of {', '.join(PRECISIONS)}")
    if precision == "fp16" and device.type != "cuda":
        raise InputError(
            f"{named}: runs on CUDA only, not on {device.type} (use bf16 or int8 on the CPU)"
        )
    if precision == "tf32" and device.type != "cuda":
        raise InputError(
            f"{named}: TF32 is a CUDA arithmetic, not on {device.type} (use fp32 there)"
        )
    if precision in ("int8", "int8_static") and device.type != "cpu":
        raise InputError(
            f"{named}: int8 quantisation runs on the CPU only, not on "
            f"{device.type} (use bf16 or fp16 there)"
        )


@functools.cache
def _warn_slow_bf16() -> None:
    """Warn once per process (cached) that bf16 is emulated on this CPU."""
    log.warning(
        "--precision bf16 on a CPU without native bf16 (neither AVX-512 BF16 nor AMX BF16 "
        "in /proc/cpuinfo, or oneDNN capped below them): bf16 is emulated and likely slower "
        "than fp32 (CPU: %s)",
        cpu_description(),
    )


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of a precision (``None`` for fp32 and int8), checked once.

    Raises ``InputError`` for a precision ``device`` cannot run (``check_precision``); bf16
    on a CPU without native bf16 warns once.
    """
    check_precision(precision, device)
    if device.type == "cpu" and precision == "bf16" and not has_native_bf16():
        _warn_slow_bf16()
    return AUTOCAST_DTYPES.get(precision)


def autocast(dtype: torch.dtype | None, device: torch.device) -> contextlib.AbstractContextManager:
    """``torch.autocast`` on ``device`` in ``dtype`` (from :func:`autocast_dtype`, checked
    once per run); nothing for ``None`` (fp32 and int8)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def cuda_tf32(precision: str, device: torch.device) -> bool | None:
    """Whether cuDNN convolutions run in TF32 in a CUDA forward pass in ``precision``: not
    for fp32 (the faithful mode), yes for tf32 (PyTorch's default); ``None`` (PyTorch's
    settings untouched) on other devices and under autocast. Matrix products stay fp32 in
    both, as by PyTorch's default."""
    if device.type != "cuda" or precision not in ("fp32", "tf32"):
        return None
    return precision == "tf32"


# tf32_mode flips process-wide switches: one block at a time across threads
_TF32_LOCK = threading.RLock()


@contextlib.contextmanager
def tf32_mode(conv_tf32: bool | None):
    """cuDNN convolutions in TF32 or not, CUDA matrix products in fp32, inside the block
    (PyTorch's global switches, restored on exit); nothing for ``None``.

    The switches are process-wide, so blocks of several threads run one at a time. Raises
    ``InputError`` when the caller set them through torch's newer ``fp32_precision``
    settings, which torch does not allow to mix with the ``allow_tf32`` switches used here.
    """
    if conv_tf32 is None:
        yield
        return
    with _TF32_LOCK:
        try:
            saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
        except RuntimeError:
            raise InputError(
                "TF32: torch's fp32_precision settings were changed; precision fp32 and tf32 "
                "on CUDA set the allow_tf32 switches, which torch refuses to mix with them"
            ) from None
        torch.backends.cudnn.allow_tf32 = conv_tf32
        torch.backends.cuda.matmul.allow_tf32 = False
        try:
            yield
        finally:
            torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved
