"""YouTube-Objects UVOS evaluation (DESIGN.md §9); the engine is `test_scripts.davis_metrics`.

Usage: python test_scripts/test_for_ytb_obj.py --gt_path GT --result_path RES [--json OUT.json]
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path


def main(argv: Sequence[str] | None = None) -> int:
    """Score RES/<video>/<frame>.png against GT/<video>/<frame>.png; exit status 2 on bad input."""
    from test_scripts.davis_metrics import run_uvos

    return run_uvos(argv, "ytb_obj")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main())
