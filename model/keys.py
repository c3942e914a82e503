"""Checkpoint key names: the release's ConvNeXt names <-> timm's, beside the model they serve.

Our modules carry the release's names everywhere except inside the encoder, which is timm's
ConvNeXt (``backbone.body.*``). These pure functions translate those names and nothing
else, in both directions, and map torchvision's ConvNeXt state dicts to the original
ConvNeXt names (for ImageNet initialisation, DESIGN.md §2).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from torch import Tensor

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
