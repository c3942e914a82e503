"""int8: the Linear layers dynamically quantised, weights ahead and activations per call
(DESIGN.md §11).

``torch.ao.quantization.quantize_dynamic`` still serves torch 2.14 with fbgemm/x86 int8
kernels, though marked deprecated in favour of torchao. torchao's
``Int8DynamicActivationInt8WeightConfig`` is not used: it ran slower than fp32 on the CPU
in eager mode and no faster than fp32 under ``torch.compile``
(``benchmarks/precision_speed.py`` compares the modes).
"""

from __future__ import annotations

import warnings

import torch
from torch import nn


def quantize_int8(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every ``nn.Linear`` dynamically quantised to int8.

    Weights are quantised once (per tensor, symmetric int8); activations are quantised
    per call from their observed range. ``model`` itself is not modified.
    """
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():
        # torch 2.14 marks torch.ao.quantization deprecated, yet it is the path with
        # fast CPU kernels (see the module docstring)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
        return quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8, inplace=False)
