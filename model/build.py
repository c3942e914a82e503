"""The builder of a ready MTNet: the variant's numbers, the weights, the device.

    model = build_mtnet("convnext-tiny", weights="saves/mtnet.pth", device="auto")

``variant_of_file`` tells a file's variant from its keys, so a ConvNeXt-S file needs no
extra argument.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping

import torch
from torch import Tensor

from util.arguments import require_int
from util.checkpoint import CheckpointError, LoadedFile
from util.distributed import resolve_device
from util.errors import InputError, setting

from .keys import model_to_release_key
from .mtnet import MTNet
from .variants import DEFAULT_VARIANT, TEST_VARIANTS, VARIANTS
from .weights import load_encoder_weights, load_network_state, read_weights

log = logging.getLogger(__name__)

UNTRAINED_WARNING = (
    "build_mtnet without weights: the network is UNTRAINED (random weights), its masks are "
    "meaningless; pass weights='saves/mtnet.pth', the authors' MTNet weights (see "
    "saves/README.md; released at https://github.com/hy0523/MTNet)"
)
_STAGE_BLOCK = re.compile(r"backbone\.stages\.(\d)\.(\d+)\.")


def build_mtnet(
    variant: str | None = "convnext-tiny",
    weights: str | os.PathLike | LoadedFile | None = None,
    device: str | torch.device = "auto",
    *,
    encoder_weights: str | os.PathLike | None = None,
    seed: int | None = None,
    untrained_ok: bool = False,
) -> MTNet:
    """A ready MTNet: built, weights loaded strictly, in eval mode on ``device``.

    Args:
        variant: ``"convnext-tiny"`` (the paper's model) or ``"convnext-small"``; ``None``:
            the variant of ``weights``, read off its keys (the file is read once).
        weights: a model file, resume checkpoint or bare state dict (any format
            ``load_weights`` takes), by path or already read
            (``util.checkpoint.load_hashed_file``); ``None``: PyTorch's initialisation.
        device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
        encoder_weights: ImageNet ConvNeXt weights for the encoder (training starts), a
            local file; nothing is ever downloaded.
        seed: initialise with ``torch.manual_seed(seed)``, the global RNG left as it was
            (reproducible random networks for smoke runs and tests). ``seed=0`` is the
            untrained network of ``test.py --random_weights`` and of ``test.py --video``
            without weights (``inference.weights_args.RANDOM_SEED``).
        untrained_ok: build without ``weights`` and ``encoder_weights`` silently (training
            starts so on purpose); otherwise such a network logs a warning: its masks are
            meaningless.
    """
    known = variant in VARIANTS or variant in TEST_VARIANTS if isinstance(variant, str) else False
    if variant is not None and not known:
        named = setting("variant", variant, flag="--encoder_name")
        raise InputError(f"{named}: expected one of {', '.join(VARIANTS)} or None")
    if seed is not None:
        seed = require_int(seed, "seed")
    if weights is None and encoder_weights is None and not untrained_ok:
        log.warning(UNTRAINED_WARNING)
    state = None
    if weights is not None:
        state, _ = read_weights(weights)
        weights = weights.path if isinstance(weights, LoadedFile) else weights  # for messages
        variant = variant or variant_of_state(state, weights)
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        model = MTNet(variant or DEFAULT_VARIANT)
    if encoder_weights is not None:
        load_encoder_weights(model.backbone, encoder_weights)
    if state is not None:
        load_network_state(model, state, weights)
        log.info("loaded weights from %s", weights)
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


def variant_of_state(state: Mapping[str, Tensor], path: object = "<state>") -> str:
    """The variant whose encoder depths (tiny: 9 blocks in stage 3, small: 27; the test
    variant's 1 per stage) fit a network state; ``CheckpointError`` naming ``path`` when
    none does."""
    depths = encoder_depths(state)
    for name, spec in {**VARIANTS, **TEST_VARIANTS}.items():
        if spec.depths == depths:
            return name
    known = ", ".join(f"{name} {spec.depths}" for name, spec in VARIANTS.items())
    raise CheckpointError(f"{path}: encoder depths {depths} fit no variant ({known})")


def variant_of_file(path: str | os.PathLike) -> str:
    """The variant of a weights file, read off its keys."""
    return variant_of_state(read_weights(path)[0], path)
