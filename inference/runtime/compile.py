"""``torch.compile`` of the network for one clip length, with Inductor's freezing
(DESIGN.md §11)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class FrozenCompiled(nn.Module):
    """``torch.compile`` of ``model`` for one input shape (``dynamic=False``), compiled on
    its first call with Inductor's freezing (DESIGN.md §11).

    Freezing is an Inductor setting that dynamo reads while it traces (``torch.compile``'s
    ``options`` do not reach it), so every call runs inside ``config.patch(freezing=True)``.
    It applies under ``torch.inference_mode`` and treats the weights as constants: the
    compiled graph does not follow later changes to ``model``'s parameters, and holds its
    own (prepacked) copy of them beside ``model``'s.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.compiled = torch.compile(model, dynamic=False)

    def forward(self, *inputs: Tensor) -> Tensor:
        from torch._inductor import config as inductor_config

        with inductor_config.patch(freezing=True):
            return self.compiled(*inputs)
