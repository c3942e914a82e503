"""The builder of a ready MTNet: the variant's numbers, the weights, the device.

    model = build_mtnet("convnext-tiny", weights="saves/mtnet.pth", device="auto")

``variant_of_file`` tells a file's variant from its keys, so a ConvNeXt-S file needs no
extra argument.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

import torch
from torch import Tensor

from util.checkpoint import CheckpointError, load_file
from util.distributed import resolve_device

from .keys import model_to_release_key
from .mtnet import MTNet
from .variants import VARIANTS
from .weights import load_encoder_weights, load_weights, network_state

_STAGE_BLOCK = re.compile(r"backbone\.stages\.(\d)\.(\d+)\.")


def build_mtnet(
    variant: str = "convnext-tiny",
    weights: str | os.PathLike | None = None,
    device: str | torch.device = "auto",
    *,
    encoder_weights: str | os.PathLike | None = None,
) -> MTNet:
    """A ready MTNet: built, weights loaded strictly, in eval mode on ``device``.

    Args:
        variant: ``"convnext-tiny"`` (the paper's model) or ``"convnext-small"``.
        weights: a model file, resume checkpoint or bare state dict (any format
            ``load_weights`` takes); ``None``: PyTorch's initialisation.
        device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
        encoder_weights: ImageNet ConvNeXt weights for the encoder (training starts), a
            local file; nothing is ever downloaded.
    """
    model = MTNet(variant)
    if encoder_weights is not None:
        load_encoder_weights(model.backbone, encoder_weights)
    if weights is not None:
        load_weights(model, weights)
    return model.eval().to(resolve_device(str(device)))


def encoder_depths(state: Mapping[str, Tensor]) -> tuple[int, ...]:
    """Blocks per encoder stage of a network state dict (our or the release's key names)."""
    depths = [0, 0, 0, 0]
    for key in state:
        match = _STAGE_BLOCK.match(model_to_release_key(key))
        if match:
            stage, block = int(match[1]), int(match[2])
            depths[stage] = max(depths[stage], block + 1)
    return tuple(depths)


def variant_of_file(path: str | os.PathLike) -> str:
    """The variant of a weights file, from its encoder's depths (tiny: 9 blocks in stage 3,
    small: 27); ``CheckpointError`` when none fits."""
    depths = encoder_depths(network_state(load_file(path), path))
    for name, spec in VARIANTS.items():
        if spec.depths == depths:
            return name
    known = ", ".join(f"{name} {spec.depths}" for name, spec in VARIANTS.items())
    raise CheckpointError(f"{path}: encoder depths {depths} fit no variant ({known})")
