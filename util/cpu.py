"""What the CPU offers the network: its cores, its vector extensions and the caps set on
them.

The extensions are read from ``/proc/cpuinfo`` (Linux); the caps are the environment
variables with which PyTorch, oneDNN, FBGEMM and MKL are told to use fewer instruction
sets. Used for the logs, ``test_config.json``, the bf16 warning and the benchmarks'
headers (DESIGN.md §11).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from pathlib import Path

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


def usable_cpus() -> int:
    """Cores this process may run on (its affinity where the system has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


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
    import torch  # here, so that the scorers' use of usable_cpus imports no torch

    isa = torch.backends.cpu.get_cpu_capability()
    line = f"{model}; {flags}; torch ISA {isa}, {torch.get_num_threads()} threads"
    limits = isa_limits(environ)
    if limits:
        line += "; capped by " + ", ".join(f"{k}={v}" for k, v in limits.items())
    return line
