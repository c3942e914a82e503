"""Overlay test.py's masks on the frames, optionally beside the flow and the ground truth.

    python visualize.py --task_name UVOS --output_dir output --model_name MTNet \
        --vis_dataset DAVIS16 --root ../data --with_flow --with_gt --make_video
"""

from __future__ import annotations

import logging
import sys

from inference.visualize import parse_config, run
from util.errors import exit_status


def main(argv: list[str] | None = None) -> int:
    """Run visualize.py; a user's mistake ends with one line on stderr and exit status 2."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    return exit_status("visualize.py", lambda: run(parse_config(argv)))


if __name__ == "__main__":
    sys.exit(main())
