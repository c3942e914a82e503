"""Write UVOS masks or VSOD saliency maps for test videos with a trained MTNet (DESIGN.md §8).

    python test.py --test_model ./saves/mtnet.pth --task_name UVOS --test_dataset DAVIS16 \
        --output_dir output
    torchrun --nproc_per_node 4 test.py ...   # videos sharded across processes
    python test.py --video clip.mp4 --output_dir output   # or a folder of frames
    python test.py --random_weights ...   # an untrained network: a smoke run of the pipeline

Data sets: masks in output/MTNet/UVOS/DAVIS16/<video>/<frame>.png, the run's record in
output/MTNet/UVOS/test_config.json. --video clip.mp4: masks and the run's record
(test_config.json) in output/MTNet/UVOS_videos/clip/, the overlay video
output/MTNet/UVOS_overlay/clip.mp4, decoded frames and flows in output/MTNet/work/clip/
(util.layout names every folder).
"""

from __future__ import annotations

import logging
import os
import sys

from inference.config import parse_config  # no torch: --help and flag errors answer at once
from util.errors import exit_status


def _setup_logging() -> None:
    rank = int(os.environ.get("RANK", "0"))
    prefix = f"[rank {rank}] " if "WORLD_SIZE" in os.environ else ""
    logging.basicConfig(
        level=logging.INFO if rank == 0 else logging.WARNING,
        format=f"%(asctime)s {prefix}%(levelname)s %(message)s",
        datefmt="%H:%M:%S",
    )


def _test(argv: list[str] | None) -> None:
    cfg = parse_config(argv)  # every flag checked before torch loads
    from inference.runner import run
    from util.memory import retain_freed_memory

    retain_freed_memory()
    run(cfg)


def main(argv: list[str] | None = None) -> int:
    """Run test.py; a user's mistake ends with one line on stderr and exit status 2."""
    _setup_logging()
    return exit_status("test.py", lambda: _test(argv))


if __name__ == "__main__":
    sys.exit(main())
