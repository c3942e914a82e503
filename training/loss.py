"""The training loss of DESIGN.md §7."""

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
        the total loss (a scalar) and its parts ``main`` and ``aux`` (detached); ``aux`` is
        the weighted term 0.5 * (sum of the three), the value the release logs, so that
        ``total = main + aux``.
    """
    main, *aux = (F.binary_cross_entropy_with_logits(x.float(), target) for x in logits)
    aux_term = AUX_WEIGHT * sum(aux)
    total = main + aux_term
    return total, {"main": main.detach(), "aux": aux_term.detach()}
