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


def main(argv: Sequence[str] | None = None) -> int:
    from training.config import config_from_args
    from training.trainer import train
    from util.distributed import cleanup
    from util.errors import InputError
    from util.memory import retain_freed_memory

    try:
        cfg = config_from_args(argv)
    except InputError as err:
        print(f"train.py: error: {err}", file=sys.stderr)
        return 2
    rank = int(os.environ.get("RANK", "0"))
    logging.basicConfig(
        level=logging.INFO if rank == 0 else logging.WARNING,
        format=f"%(asctime)s [rank {rank}] %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    retain_freed_memory()
    try:
        train(cfg)
    except InputError as err:
        # a user's mistake (data, paths, flags): one line, no traceback
        print(f"train.py: error: {err}", file=sys.stderr)
        return 2
    finally:
        cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
