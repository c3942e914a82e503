"""Run by ``torchrun`` in test_train_run.py: train, then compare parameters across ranks.

Usage: ``torchrun ... tests/ddp_train_worker.py <base dir> <train.py flags>``. Rank r
trains the test-sized network with ``--exp <base>/rank<r>``, so anything a rank other
than 0 writes shows up in its own folder. Rank 0 writes ``<base>/result.json`` with the largest parameter difference
between ranks and the iteration count.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from tests.train_helpers import config_of_test_network
from training.trainer import train
from util.distributed import cleanup


def main() -> None:
    base = Path(sys.argv[1])
    rank = int(os.environ["RANK"])
    result = train(config_of_test_network([*sys.argv[2:], "--exp", str(base / f"rank{rank}")]))
    flat = torch.cat([p.detach().flatten() for p in result.model.parameters()])
    gathered = [torch.empty_like(flat) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, flat)
    if rank == 0:
        diff = max(float((g - flat).abs().max()) for g in gathered)
        report = {"max_diff": diff, "it": result.it, "world_size": len(gathered)}
        (base / "result.json").write_text(json.dumps(report))
    cleanup()


if __name__ == "__main__":
    main()
