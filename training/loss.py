"""The training loss of MTNET.md §7."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor

AUX_WEIGHT = 0.5


def mtnet_loss(logits: Sequence[Tensor], target: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    """BCE-with-logits(main) + 0.5 * (BCE(aux3) + BCE(aux4) + BCE(aux5)).

    Args:
        logits: four maps ``[N, 1, H, W]`` at the input size, main first (N = B*T).
        target: masks ``[N, 1, H, W]`` in [0, 1] (soft where rotation blurred them).

    Returns:
        the total loss (a scalar) and its parts ``main`` and ``aux`` (detached).
    """
    main, *aux = (F.binary_cross_entropy_with_logits(x.float(), target) for x in logits)
    aux_sum = sum(aux)
    total = main + AUX_WEIGHT * aux_sum
    return total, {"main": main.detach(), "aux": aux_sum.detach()}
