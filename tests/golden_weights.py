"""Rebuildable MTNet weights and the fixed input of the golden check.

The golden check compares our network with the release's own output
(``tests/data/golden/mtnet_eval_512.npz``) for weights that anyone can rebuild from the
key list alone: each tensor of the release's state dict is drawn from a generator
seeded with the CRC-32 of its key name, with a rule chosen by the key's suffix so that
every BatchNorm statistic, layer scale and norm weight affects the output.

As a script it writes those weights as a release-format model file::

    python -m tests.golden_weights OUT.pth
"""

from __future__ import annotations

import argparse
import math
import os
import zlib
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

from util.checkpoint import atomic_torch_save

DATA = Path(__file__).parent / "data"
KEY_LIST = DATA / "mtnet_state_dict.tsv"
GOLDEN_DIR = DATA / "golden"
GOLDEN_ARRAYS = GOLDEN_DIR / "mtnet_eval_512.npz"
GOLDEN_SIZE = 512


def read_key_list(path: Path = KEY_LIST) -> dict[str, tuple[int, ...]]:
    """The release's state-dict keys and shapes, in file order (``key<TAB>shape<TAB>kind``).

    A shape is written ``96x3x4x4``, or ``scalar`` for a 0-d tensor.
    """
    rows = {}
    for line in path.read_text().splitlines()[1:]:
        if not line.strip():
            continue
        key, shape = line.split("\t")[:2]
        rows[key] = () if shape == "scalar" else tuple(int(s) for s in shape.split("x"))
    return rows


def key_generator(key: str) -> torch.Generator:
    """A CPU generator seeded with the CRC-32 of the key's UTF-8 bytes."""
    return torch.Generator().manual_seed(zlib.crc32(key.encode()))


def golden_tensor(key: str, shape: tuple[int, ...]) -> Tensor:
    """The tensor for one release key; the first matching rule decides.

    - ``*num_batches_tracked``: zeros (int64);
    - ``*running_var``: uniform in [0.5, 1.5);
    - ``*running_mean``: normal, std 0.1;
    - ``*gamma`` (layer scales): uniform in [0.1, 1.0);
    - ``*bias``: normal, std 0.05;
    - any other 1-d tensor (norm weights): normal around 1, std 0.1;
    - everything else (convolution and linear weights): normal / sqrt(fan-in), where the
      fan-in is the product of all dimensions after the first.
    """
    g = key_generator(key)
    if key.endswith("num_batches_tracked"):
        return torch.zeros(shape, dtype=torch.long)
    if key.endswith("running_var"):
        return 0.5 + torch.rand(shape, generator=g)
    if key.endswith("running_mean"):
        return 0.1 * torch.randn(shape, generator=g)
    if key.endswith("gamma"):
        return 0.1 + 0.9 * torch.rand(shape, generator=g)
    if key.endswith("bias"):
        return 0.05 * torch.randn(shape, generator=g)
    if len(shape) == 1:
        return 1.0 + 0.1 * torch.randn(shape, generator=g)
    fan_in = math.prod(shape[1:])
    return torch.randn(shape, generator=g) / math.sqrt(fan_in)


def golden_state_dict(keys: Mapping[str, tuple[int, ...]] | None = None) -> dict[str, Tensor]:
    """The golden weights under the release's key names (no ``module.`` prefix).

    ``keys`` maps key -> shape; by default the release's key list of the tiny variant.
    """
    keys = read_key_list() if keys is None else keys
    return {key: golden_tensor(key, tuple(shape)) for key, shape in keys.items()}


def golden_input(size: int = GOLDEN_SIZE) -> tuple[Tensor, Tensor]:
    """The fixed clip: imgs and flows ``[1, 3, 3, size, size]`` (B, T, C, H, W).

    Standard normal, both drawn in turn from one generator seeded with 0.
    """
    g = torch.Generator().manual_seed(0)
    imgs = torch.randn(1, 3, 3, size, size, generator=g)
    flows = torch.randn(1, 3, 3, size, size, generator=g)
    return imgs, flows


def save_golden_weights(path: str | os.PathLike) -> None:
    """Write the golden weights as a release-format model file ``{"it", "network"}``.

    Keys carry the ``module.`` prefix of the release's DataParallel-wrapped network, so
    the file looks exactly like a released checkpoint.
    """
    network = {"module." + k: v for k, v in golden_state_dict().items()}
    atomic_torch_save({"it": 0, "network": network}, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="model file to write (.pth)")
    args = parser.parse_args(argv)
    save_golden_weights(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
