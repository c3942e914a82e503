"""torch.hub entry points: MTNet from any working directory, through a local clone.

    import torch

    predictor = torch.hub.load("path/to/clone", "mtnet_predictor", source="local",
                               weights="path/to/mtnet.pth", task="UVOS")
    model = torch.hub.load("path/to/clone", "mtnet", source="local", weights=None, seed=0)

The project keeps the release's top-level packages (``model``, ``dataset``, ``inference``,
``util``, ...), so it is not installed into site-packages under those generic names. Loading
through this file puts the clone on ``sys.path`` and leaves those packages in
``sys.modules``: a program's own top-level modules of the same names clash with them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# torch.hub checks that these import before calling an entry point.
dependencies = ["torch", "torchvision", "timm", "cv2", "numpy", "PIL"]

_CLONE = Path(__file__).resolve().parent
_RELEASED_WEIGHTS = _CLONE / "saves" / "mtnet.pth"


def _make_importable() -> None:
    """Keep the clone on ``sys.path`` after torch.hub.load returns (the library imports some
    modules only when used, and worker processes import the project by name).

    torch.hub inserts the folder at position 0 while it loads and removes that entry after,
    so an entry of our own is appended behind it, once.
    """
    clone = str(_CLONE)
    if clone not in sys.path[1:]:
        sys.path.append(clone)


def mtnet(
    variant: str | None = None,
    weights: str | os.PathLike | None = _RELEASED_WEIGHTS,
    device: str = "auto",
    seed: int | None = None,
):
    """MTNet, built and in eval mode (``model.build_mtnet``).

    Args:
        variant: ``"convnext-tiny"`` (the paper's model) or ``"convnext-small"``; ``None``:
            read off the weights file's keys (``"convnext-tiny"`` without weights).
        weights: a model file (the authors' ``mtnet.pth``, a ``best.pth`` of train.py, a
            resume checkpoint or a bare state dict); by default the clone's
            ``saves/mtnet.pth``. ``None``: an UNTRAINED network (masks are meaningless;
            for smoke runs and tests).
        device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
        seed: seed of the untrained network's initialisation; ``seed=0`` with
            ``weights=None`` is the network test.py runs without weights.

    Returns:
        ``model.MTNet`` in eval mode: ``model(imgs, flows)`` maps frames and flow images
        ``[B, T, 3, H, W]`` (ImageNet-normalised, H and W multiples of 64) to the
        probabilities ``[B*T, 1, H, W]`` (in training mode: four logit maps, main first).
    """
    _make_importable()
    from model import build_mtnet

    return build_mtnet(variant, weights=weights, device=device, seed=seed)


def mtnet_predictor(
    weights: str | os.PathLike | None = _RELEASED_WEIGHTS,
    task: str = "UVOS",
    test_size: tuple[int, int] = (512, 512),
    clip_length: int = 9,
    device: str = "auto",
    variant: str | None = None,
    seed: int | None = None,
    **options,
):
    """MTNet's test-time pipeline as ``inference.MTNetPredictor``: frames in, masks out.

    Args:
        weights: as for ``mtnet``: by default the clone's ``saves/mtnet.pth``; ``None``: an
            UNTRAINED network (``seed=0``: test.py's untrained network).
        task: ``"UVOS"`` (binary masks, {0, 255}) or ``"VSOD"`` (saliency maps, 0..255).
        test_size: the network's input (height, width), multiples of 64; the paper's 512x512.
        clip_length: frames per clip (the paper's 9).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
        variant: ``"convnext-tiny"`` or ``"convnext-small"``; ``None``: read off the weights
            (``"convnext-tiny"`` without weights).
        seed: seed of the untrained network's initialisation (with ``weights=None``).
        **options: further ``MTNetPredictor`` options (``precision``, ``runtime``,
            ``onnx_path``, ``channels_last``, ``compile``, ``int8_calibration``, ``flow``,
            ``memory_check``).

    Returns:
        ``inference.MTNetPredictor``: ``predictor.segment(frames, flows=None)`` yields one
        uint8 ``[h, w]`` mask per RGB uint8 ``[h, w, 3]`` frame; ``segment_video(path)``
        yields ``(frame name, mask)`` for a video file or a folder of frames.
    """
    _make_importable()
    from inference import MTNetPredictor

    model = mtnet(variant, weights=weights, device=device, seed=seed)
    return MTNetPredictor(model, task, test_size, clip_length, **options)
