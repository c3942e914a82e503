"""Wall time of the evaluation scripts on the DAVIS-2016 validation masks.

Scores the masks against themselves and against perturbed copies (shifted, partly
dilated masks for J/F; blurred soft maps for VSOD), each by running the real script in a
fresh interpreter, so start-up and imports are counted. Goals (on a 2-core
machine): J/F <= 15 s, the four VSOD metrics <= 60 s.

Usage: python -m benchmarks.eval_speed [--data ../shared/data/DAVIS16/val] [--workers N]
The perturbed copies go to a temporary folder (not timed) and are removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks.common import DAVIS_VAL, REPO
from util.image import read_mask, write_image

GOALS = {"J/F": 15.0, "VSOD": 60.0}


def perturb(masks: Path, out: Path, *, soft: bool) -> None:
    """Write a perturbed copy of every mask: shifted (and every third frame dilated), or a
    blurred 8-bit soft map with full range."""
    rng = np.random.default_rng(0)
    for path in sorted(masks.glob("*/*.png")):
        gt = read_mask(path)
        m = np.roll(gt > 0, (int(rng.integers(-8, 9)), int(rng.integers(-8, 9))), axis=(0, 1))
        m = m.astype(np.uint8) * 255
        if soft:
            m = cv2.GaussianBlur(m, (0, 0), 4)
            m.flat[0], m.flat[-1] = 0, 255
        elif rng.random() < 1 / 3:
            m = cv2.dilate(m, np.ones((7, 7), np.uint8))
        write_image(out / path.parent.name / path.name, m)


def children_cpu() -> float:
    """CPU seconds (user + system) used so far by finished child processes."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(args: list[str], json_path: Path) -> tuple[float, float, object]:
    """Run a script from the repo root: wall time, CPU time (all its processes), --json output."""
    cpu, start = children_cpu(), time.perf_counter()
    proc = subprocess.run(
        [sys.executable, *args, "--json", str(json_path)], cwd=REPO, capture_output=True, text=True
    )
    elapsed, cpu = time.perf_counter() - start, children_cpu() - cpu
    if proc.returncode != 0:
        sys.exit(f"{args[0]} failed: {proc.stderr.strip()}")
    return elapsed, cpu, json.loads(json_path.read_text())


def link_videos(source: Path, target: Path) -> None:
    """target/<video> -> source/<video> for every video (no copies)."""
    target.mkdir(parents=True)
    for video in sorted(p for p in source.iterdir() if p.is_dir()):
        (target / video.name).symlink_to(video.resolve())


def report(kind: str, case: str, wall: float, cpu: float, scores: str) -> None:
    """One line: wall time against the goal, CPU time of all the script's processes, scores."""
    verdict = "ok" if wall <= GOALS[kind] else "OVER"
    print(
        f"{kind:<5} {case:<10} wall {wall:5.1f} s (goal <= {GOALS[kind]:.0f} s: {verdict}), "
        f"cpu {cpu:5.1f} s | {scores}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DAVIS_VAL)
    parser.add_argument("--workers", type=int, help="passed to the scripts (default: theirs)")
    args = parser.parse_args()
    masks = args.data / "mask"
    if not masks.is_dir():
        sys.exit(f"no masks at {masks}")
    extra = ["--workers", str(args.workers)] if args.workers else []
    videos = sorted(p for p in masks.iterdir() if p.is_dir())
    frames = sum(len(list(v.glob("*.png"))) for v in videos)
    print(f"DAVIS-2016 val: {len(videos)} videos, {frames} frames ({masks.resolve()})")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        perturb(masks, tmp / "uvos", soft=False)
        link_videos(masks, tmp / "G" / "DAVIS16")
        link_videos(masks, tmp / "P" / "self" / "DAVIS16")
        perturb(masks, tmp / "P" / "perturbed" / "DAVIS16", soft=True)

        davis = ["test_scripts/test_for_davis.py", "--gt_path", str(masks), *extra]
        for case, res in (("self", masks), ("perturbed", tmp / "uvos")):
            wall, cpu, out = timed([*davis, "--result_path", str(res)], tmp / "jf.json")
            report(
                "J/F",
                case,
                wall,
                cpu,
                f"J {out['J']['mean']:.6f}  F {out['F']['mean']:.6f}  J&F {out['JF']:.6f}",
            )

        vsod = ["test_scripts/test_vsod/main.py", "--gt_dir", str(tmp / "G"), *extra]
        for case in ("self", "perturbed"):
            wall, cpu, rows = timed(
                [*vsod, "--pred_dir", str(tmp / "P"), "--method", case], tmp / "v.json"
            )
            r = rows[0]
            report(
                "VSOD",
                case,
                wall,
                cpu,
                f"MAE {r['MAE']:.6f}  maxF {r['maxF']:.6f}  maxE {r['maxE']:.6f}  S {r['S']:.6f}",
            )


if __name__ == "__main__":
    main()
