"""VSOD evaluation: MAE, max F-measure, max E-measure and S-measure (DESIGN.md §9).

Usage:
    python test_scripts/test_vsod/main.py --method MTNet --dataset DAVIS16 \\
        --gt_dir G --pred_dir P [--no-use_flow] [--json OUT.json]

The engine is ``test_scripts.test_vsod.evaluate`` (folders) and ``.metrics`` (measures).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path


def main(argv: Sequence[str] | None = None) -> int:
    """Score P/<method>/<dataset>/ against G/<dataset>/; exit status 2 on bad input."""
    from test_scripts.test_vsod.evaluate import run

    return run(argv)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    sys.exit(main())
