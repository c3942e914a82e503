"""Train MTNet (DESIGN.md §7): ``python train.py --stage {pre_train,main_train} ...``.

One process: ``python train.py --stage pre_train``. Several (one per GPU, any number of
nodes): ``torchrun --nproc_per_node 8 train.py --stage pre_train`` (see train_m.sh).
``--help`` lists the flags and their per-stage defaults.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence


def _train(argv: Sequence[str] | None) -> None:
    from training.config import config_from_args

    cfg = config_from_args(argv)  # every flag checked before any work (and before torch loads)
    from training.trainer import train
    from util.distributed import cleanup
    from util.memory import retain_freed_memory

    rank = int(os.environ.get("RANK", "0"))
    logging.basicConfig(
        level=logging.INFO if rank == 0 else logging.WARNING,
        format=f"%(asctime)s [rank {rank}] %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    retain_freed_memory()
    try:
        train(cfg)
    finally:
        cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    """Run train.py; a user's mistake (data, paths, flags) ends with one line on stderr and
    exit status 2, on every rank."""
    from util.errors import exit_status

    return exit_status("train.py", lambda: _train(argv))


if __name__ == "__main__":
    sys.exit(main())
