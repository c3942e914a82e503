"""MTNet's weights in files: the release's format, strict loading, ImageNet initialisation.

Two kinds of file (DESIGN.md §7):
- a model file ``{"it": int, "network": {"module.<release key>": tensor}}``, exactly like
  the authors' released weights, so both code bases load each other's files;
- a resume checkpoint: the same two entries plus optimiser, scaler and RNG states.

Names are translated by ``model.keys``; files are read and written by ``util.checkpoint``
(``weights_only=True``, atomic writes).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from torch import Tensor, nn

from util.checkpoint import (
    CheckpointError,
    LoadedFile,
    atomic_torch_save,
    load_file,
    require_finite,
    require_string_keys,
    strip_wrapper_prefixes,
)

from .keys import model_to_release_key, release_to_model_key, torchvision_convnext_to_release

log = logging.getLogger(__name__)


def release_state_dict(model: nn.Module) -> dict[str, Tensor]:
    """The network's weights under the release's names, each prefixed with ``module.``.

    This is the ``network`` entry of every file we write. A DDP or compiled wrapper is
    looked through.
    """
    state = strip_wrapper_prefixes(model.state_dict())
    return {"module." + model_to_release_key(k): v.detach().cpu() for k, v in state.items()}


def save_model_file(path: str | os.PathLike, model: nn.Module, it: int = 0) -> None:
    """Write a release-format model file ``{"it", "network"}``; non-finite weights raise
    ``CheckpointError`` and nothing is written."""
    state = release_state_dict(model)
    require_finite(state, path)
    atomic_torch_save({"it": int(it), "network": state}, path)


def require_finite_network(state: Mapping[str, Tensor], path: object) -> None:
    """``require_finite`` naming the tensor by the release's key (a network with one NaN
    weight outputs NaN everywhere, so such weights are never loaded)."""
    require_finite({model_to_release_key(k): v for k, v in state.items()}, path)


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
    require_string_keys(obj, path)
    return {release_to_model_key(k): v for k, v in strip_wrapper_prefixes(obj).items()}


def check_state_fits(
    expected: Mapping[str, Tensor], state: Mapping[str, Tensor], path: object
) -> None:
    """Raise one ``CheckpointError`` naming the first missing, unexpected and misshapen keys,
    or the first tensor of another kind than the network's (integers where the network has
    floating-point values, or the reverse: loading would truncate them without a word; a
    float16 or float64 file loads, its values converted exactly or rounded to float32).

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
    for key, value in expected.items():
        if _kind(state[key]) != _kind(value):
            raise CheckpointError(
                f"{path}: tensor {model_to_release_key(key)} is {state[key].dtype}, the "
                f"network's is {value.dtype}; expected {_kind(value)} values there (a "
                "damaged or converted file)"
            )


def _kind(tensor: Tensor) -> str:
    """What kind of numbers a tensor holds: floating-point, complex, or integer (bool too)."""
    if tensor.is_complex():
        return "complex"
    return "floating-point" if tensor.is_floating_point() else "integer"


def read_weights(source: str | os.PathLike | LoadedFile) -> tuple[dict[str, Tensor], int | None]:
    """The network state (our key names) of a model file, resume checkpoint or bare state
    dict, and its stored iteration (``it``) when it has one; ``source`` is the file's path,
    or the file already read (:func:`util.checkpoint.load_hashed_file`)."""
    if isinstance(source, LoadedFile):
        obj, path = source.contents, source.path
    else:
        obj, path = load_file(source), source
    it = obj.get("it")
    return network_state(obj, path), int(it) if isinstance(it, int | Tensor) else None


def load_network_state(model: nn.Module, state: Mapping[str, Tensor], path: object) -> None:
    """Load ``state`` (from :func:`read_weights`) into ``model`` strictly: every key and
    shape must fit and every value be finite, else one ``CheckpointError`` naming ``path``."""
    check_state_fits(model.state_dict(), state, path)
    require_finite_network(state, path)
    model.load_state_dict(state)


def load_weights(model: nn.Module, path: str | os.PathLike) -> int | None:
    """Load a model file, resume checkpoint or bare state dict into ``model``, strictly.

    Returns the stored iteration (``it``) when the file has one.
    """
    state, it = read_weights(path)
    load_network_state(model, state, path)
    log.info("loaded weights from %s%s", path, f" (iteration {it})" if it is not None else "")
    return it


def load_encoder_weights(encoder: nn.Module, path: str | os.PathLike) -> None:
    """Initialise the ConvNeXt encoder from ImageNet weights in a local file.

    Accepts the original ConvNeXt release (``{"model": ...}`` with ``downsample_layers.*``,
    ``stages.*``) and torchvision's ``convnext_tiny``/``convnext_small`` state dicts. The
    classifier and final norm are ignored and MTNet's ``norm0..3`` keep their
    initialisation, as in the release (DESIGN.md §2); every ConvNeXt weight must be present.
    """
    obj = load_file(path)
    state = obj.get("model", obj)
    require_string_keys(state, path)
    state = strip_wrapper_prefixes(state)
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
    require_finite_network(state, path)
    encoder.body.load_state_dict({k[len("backbone.body.") :]: v for k, v in state.items()})
    log.info("encoder initialised from %s (%d tensors)", path, len(state))
