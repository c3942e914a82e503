"""The numeric precisions of the network at test time and where each runs (DESIGN.md §11).

The precisions' names and autocast dtypes, the check that a device runs a precision, and
the TF32 switches of CUDA's fp32.

fp32 is the default and the faithful mode: on CUDA it turns TF32 (a 10-bit mantissa)
off for cuDNN convolutions, which PyTorch by default runs in TF32; ``tf32`` (CUDA) is that
default, convolutions in TF32. Matrix products stay fp32 in both, as by PyTorch's
default. bf16 and fp16 run under ``torch.autocast``; int8 is dynamic quantisation of the
Linear layers (``inference.runtime.int8_dynamic``), int8_static the same layers with
activation ranges calibrated ahead (``inference.runtime.int8_static``).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading

import torch

from util.choices import AUTOCAST_PRECISIONS, PRECISIONS
from util.cpu import cpu_description, has_native_bf16
from util.errors import InputError, setting

log = logging.getLogger(__name__)

AUTOCAST_DTYPES: dict[str, torch.dtype] = dict(
    zip(AUTOCAST_PRECISIONS, (torch.bfloat16, torch.float16), strict=True)
)


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
