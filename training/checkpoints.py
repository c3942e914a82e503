"""Resume checkpoints ``<it>_checkpoint.pth`` of a run folder (DESIGN.md §7).

A resume checkpoint is ``{"it", "network", "optimizer", "scaler", "rng", "best_iou"}``:
``network`` in the release's key names (so it loads wherever a model file does), ``rng``
the global RNG states of every rank (``{"world_size", "ranks": [...]}``), ``best_iou``
the best validation score so far so that ``best.pth`` is not replaced by a worse one
after a resume. Files are written atomically: a killed run leaves complete files only.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from torch import nn

from model.weights import release_state_dict
from util.checkpoint import CheckpointError, atomic_torch_save, load_file, require_finite

log = logging.getLogger(__name__)

_CHECKPOINT_RE = re.compile(r"^(\d+)_checkpoint\.pth$")


def checkpoint_path(run_dir: Path, it: int) -> Path:
    return Path(run_dir) / f"{it}_checkpoint.pth"


def list_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """``(iteration, path)`` of the run folder's resume checkpoints, oldest first."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    found = []
    for path in run_dir.iterdir():
        match = _CHECKPOINT_RE.match(path.name)
        if match and path.is_file():
            found.append((int(match.group(1)), path))
    return sorted(found)


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest (highest iteration) resume checkpoint of ``run_dir``, if any."""
    found = list_checkpoints(run_dir)
    return found[-1][1] if found else None


def save_resume_checkpoint(
    run_dir: Path,
    it: int,
    model: nn.Module,
    optimizer_state: dict,
    scaler_state: dict,
    rng: dict,
    best_iou: float | None,
) -> Path:
    """Write ``<it>_checkpoint.pth`` atomically and return its path; non-finite weights
    raise ``CheckpointError`` and nothing is written."""
    path = checkpoint_path(run_dir, it)
    network = release_state_dict(model)
    require_finite(network, path)
    state = {
        "it": int(it),
        "network": network,
        "optimizer": optimizer_state,
        "scaler": scaler_state,
        "rng": rng,
        "best_iou": best_iou,
    }
    atomic_torch_save(state, path)
    return path


def load_resume_checkpoint(path: Path) -> dict:
    """Read a resume checkpoint; ``CheckpointError`` if it lacks the resume entries."""
    state = load_file(path)
    missing = [k for k in ("it", "network", "optimizer") if k not in state]
    if missing:
        raise CheckpointError(f"{path}: not a resume checkpoint (no {', '.join(missing)})")
    return state


def prune_checkpoints(run_dir: Path, keep: int) -> None:
    """Delete all but the ``keep`` newest resume checkpoints (``keep`` 0 keeps all)."""
    if keep <= 0:
        return
    for _, path in list_checkpoints(run_dir)[:-keep]:
        path.unlink(missing_ok=True)
        log.info("removed old checkpoint %s", path)
