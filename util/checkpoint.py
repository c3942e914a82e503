"""Model files, resume checkpoints and the mapping to the release's key names.

Two kinds of file (MTNET.md §7):
- a model file ``{"it": int, "network": {"module.<release key>": tensor}}``, exactly like
  the authors' released weights, so both code bases load each other's files;
- a resume checkpoint: the same two entries plus optimiser, scaler and RNG states.

Our modules use the release's names everywhere except inside the encoder, which is timm's
ConvNeXt; ``release_to_model_key`` / ``model_to_release_key`` translate those names and
nothing else. Files are read with ``weights_only=True`` (a crafted pickle cannot run code)
and written to a temporary file that is renamed into place.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from .fileio import atomic_path

log = logging.getLogger(__name__)

_WRAPPER_PREFIXES = ("module.", "_orig_mod.")

# Key rules below "backbone.", tried in order; the two lists are inverses of each other.
_RELEASE_TO_MODEL: list[tuple[str, str]] = [
    (r"downsample_layers\.0\.(\d)\.", r"body.stem_\1."),
    (r"downsample_layers\.(\d)\.(\d)\.", r"body.stages_\1.downsample.\2."),
    (r"stages\.(\d)\.(\d+)\.dwconv\.", r"body.stages_\1.blocks.\2.conv_dw."),
    (r"stages\.(\d)\.(\d+)\.pwconv(\d)\.", r"body.stages_\1.blocks.\2.mlp.fc\3."),
    (r"stages\.(\d)\.(\d+)\.", r"body.stages_\1.blocks.\2."),
]
_MODEL_TO_RELEASE: list[tuple[str, str]] = [
    (r"body\.stem_(\d)\.", r"downsample_layers.0.\1."),
    (r"body\.stages_(\d)\.downsample\.(\d)\.", r"downsample_layers.\1.\2."),
    (r"body\.stages_(\d)\.blocks\.(\d+)\.conv_dw\.", r"stages.\1.\2.dwconv."),
    (r"body\.stages_(\d)\.blocks\.(\d+)\.mlp\.fc(\d)\.", r"stages.\1.\2.pwconv\3."),
    (r"body\.stages_(\d)\.blocks\.(\d+)\.", r"stages.\1.\2."),
]


class CheckpointError(ValueError):
    """A weights file that is missing, unreadable or does not fit the network."""


def _rename_backbone(key: str, rules: list[tuple[str, str]]) -> str:
    if not key.startswith("backbone."):
        return key
    rest = key[len("backbone.") :]
    for pattern, template in rules:
        new, count = re.subn("^" + pattern, template, rest)
        if count:
            return "backbone." + new
    return key


def release_to_model_key(key: str) -> str:
    """Release name (``backbone.stages.0.0.dwconv.weight``) -> ours (timm's body names)."""
    return _rename_backbone(key, _RELEASE_TO_MODEL)


def model_to_release_key(key: str) -> str:
    """Our name -> the release's name; the inverse of ``release_to_model_key``."""
    return _rename_backbone(key, _MODEL_TO_RELEASE)


def strip_wrapper_prefixes(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Remove DDP's ``module.`` and torch.compile's ``_orig_mod.`` prefixes where present."""
    out = {}
    for key, value in state.items():
        while key.startswith(_WRAPPER_PREFIXES):
            key = key.split(".", 1)[1]
        out[key] = value
    return out


def release_state_dict(model: nn.Module) -> dict[str, Tensor]:
    """The network's weights under the release's names, each prefixed with ``module.``.

    This is the ``network`` entry of every file we write. A DDP or compiled wrapper is
    looked through.
    """
    state = strip_wrapper_prefixes(model.state_dict())
    return {"module." + model_to_release_key(k): v.detach().cpu() for k, v in state.items()}


def first_non_finite(state: Mapping[str, Tensor]) -> str | None:
    """The name of the first floating-point tensor of ``state`` holding a NaN or an
    infinity, or ``None`` when all are finite."""
    for key, value in state.items():
        floating = isinstance(value, Tensor) and value.is_floating_point()
        if floating and not bool(torch.isfinite(value).all()):
            return key
    return None


def require_finite(state: Mapping[str, Tensor], path: object) -> None:
    """Raise ``CheckpointError`` naming ``path`` and the first non-finite tensor, if any.

    A network with a NaN weight outputs NaN everywhere (all-black masks), so such weights
    are never loaded nor written.
    """
    key = first_non_finite(state)
    if key is not None:
        raise CheckpointError(
            f"{path}: tensor {model_to_release_key(key)} holds NaN or infinite values; "
            "expected finite weights"
        )


def atomic_torch_save(obj: object, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename into place."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def save_model_file(path: str | os.PathLike, model: nn.Module, it: int = 0) -> None:
    """Write a release-format model file ``{"it", "network"}``; non-finite weights raise
    ``CheckpointError`` and nothing is written."""
    state = release_state_dict(model)
    require_finite(state, path)
    atomic_torch_save({"it": int(it), "network": state}, path)


def load_file(path: str | os.PathLike) -> dict:
    """Read a weights file safely (``weights_only=True``, on the CPU).

    Raises ``CheckpointError`` naming the file when it is missing, is not a torch file,
    holds objects other than tensors and plain containers, or is not a dict.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such weights file")
    try:
        with warnings.catch_warnings():  # torch warns about legacy pickles before failing
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # torch raises pickle, zip and runtime errors alike
        raise CheckpointError(
            f"{path}: not a loadable weights file ({_why_unloadable(path)})"
        ) from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a dict of weights, found {type(obj).__name__}")
    return obj


def _why_unloadable(path: Path) -> str:
    """Our own reason for a file that the safe loader refuses (torch's message would
    suggest turning the safe loader off, which must never be done for a file of unknown
    origin)."""
    with path.open("rb") as fh:
        head = fh.read(4)
    if head.startswith(b"PK\x03\x04"):
        return (
            "a damaged PyTorch file, or one holding objects other than tensors, numbers and "
            "plain containers, which are never unpickled; expected a file of torch.save"
        )
    if head[:1] == b"\x80":
        return (
            "a pickle holding objects other than tensors, numbers and plain containers, "
            "which are never unpickled, or a damaged one; expected a file of torch.save"
        )
    return "not a PyTorch file; expected a file of torch.save, as the release's mtnet.pth"


def network_state(obj: Mapping, path: str | os.PathLike = "<state>") -> dict[str, Tensor]:
    """The network weights of a loaded file under our module names.

    Accepts a model file or resume checkpoint (``{"network": ...}``, also ``"model"`` or
    ``"state_dict"``) and a bare state dict, with or without wrapper prefixes, with
    release or our own encoder names.
    """
    for entry in ("network", "model", "state_dict"):
        if isinstance(obj.get(entry), Mapping):
            obj = obj[entry]
            break
    if not obj or not all(isinstance(v, Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: holds no state dict of tensors")
    return {release_to_model_key(k): v for k, v in strip_wrapper_prefixes(obj).items()}


def check_state_fits(
    expected: Mapping[str, Tensor], state: Mapping[str, Tensor], path: object
) -> None:
    """Raise one ``CheckpointError`` naming the first missing, unexpected and misshapen keys.

    Both mappings use our module names; the message uses the release's.
    """
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    misshapen = [
        f"{model_to_release_key(k)} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    problems = []
    for what, keys in (("missing", missing), ("unexpected", unexpected)):
        if keys:
            names = ", ".join(model_to_release_key(k) for k in keys[:3])
            problems.append(f"{len(keys)} {what} (first: {names})")
    if misshapen:
        problems.append(f"{len(misshapen)} wrongly shaped (first: {misshapen[0]})")
    if problems:
        raise CheckpointError(f"{path}: does not fit the network: " + "; ".join(problems))


def load_weights(model: nn.Module, path: str | os.PathLike) -> int | None:
    """Load a model file, resume checkpoint or bare state dict into ``model``, strictly.

    Returns the stored iteration (``it``) when the file has one.
    """
    obj = load_file(path)
    state = network_state(obj, path)
    check_state_fits(model.state_dict(), state, path)
    require_finite(state, path)
    model.load_state_dict(state)
    it = obj.get("it")
    log.info("loaded weights from %s%s", path, f" (iteration {it})" if it is not None else "")
    return int(it) if isinstance(it, int | Tensor) else None


# torchvision's convnext_{tiny,small}: features.{0,2,4,6} downsample, features.{1,3,5,7} stages.
_TORCHVISION_TO_RELEASE: list[tuple[str, str]] = [
    (r"features\.([0246])\.(\d)\.", "downsample"),
    (r"features\.([1357])\.(\d+)\.block\.0\.", "dwconv"),
    (r"features\.([1357])\.(\d+)\.block\.2\.", "norm"),
    (r"features\.([1357])\.(\d+)\.block\.3\.", "pwconv1"),
    (r"features\.([1357])\.(\d+)\.block\.5\.", "pwconv2"),
    (r"features\.([1357])\.(\d+)\.layer_scale$", "gamma"),
]


def torchvision_convnext_to_release(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """torchvision ConvNeXt keys -> original ConvNeXt keys (``downsample_layers``, ``stages``).

    The classifier is dropped; layer scales ``[C, 1, 1]`` become ``gamma`` ``[C]``.
    """
    out = {}
    for key, value in state.items():
        for pattern, part in _TORCHVISION_TO_RELEASE:
            m = re.match(pattern, key)
            if not m:
                continue
            index, sub = int(m.group(1)), m.group(2)
            rest = key[m.end() :]
            if part == "downsample":
                out[f"downsample_layers.{index // 2}.{sub}.{rest}"] = value
            elif part == "gamma":
                out[f"stages.{index // 2}.{sub}.gamma"] = value.reshape(-1)
            else:
                out[f"stages.{index // 2}.{sub}.{part}.{rest}"] = value
            break
    return out


def load_encoder_weights(encoder: nn.Module, path: str | os.PathLike) -> None:
    """Initialise the ConvNeXt encoder from ImageNet weights in a local file.

    Accepts the original ConvNeXt release (``{"model": ...}`` with ``downsample_layers.*``,
    ``stages.*``) and torchvision's ``convnext_tiny``/``convnext_small`` state dicts. The
    classifier and final norm are ignored and MTNet's ``norm0..3`` keep their
    initialisation, as in the release (MTNET.md §2); every ConvNeXt weight must be present.
    """
    obj = load_file(path)
    state = strip_wrapper_prefixes(obj.get("model", obj))
    if any(k.startswith("features.") for k in state):
        state = torchvision_convnext_to_release(state)
    state = {
        release_to_model_key("backbone." + k): v
        for k, v in state.items()
        if k.startswith(("downsample_layers.", "stages."))
    }
    if not state:
        raise CheckpointError(f"{path}: no ConvNeXt encoder weights found")
    expected = {"backbone.body." + k: v for k, v in encoder.body.state_dict().items()}
    check_state_fits(expected, state, path)
    require_finite(state, path)
    encoder.body.load_state_dict({k[len("backbone.body.") :]: v for k, v in state.items()})
    log.info("encoder initialised from %s (%d tensors)", path, len(state))
