"""The README stays short, its first Python example runs as printed, and every local link of
the README and docs/ pages leads to a file and heading that exist."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
PAGES = [README, *sorted((REPO / "docs").glob("*.md"))]
MAX_README_LINES = 300
# The example runs the paper's network at its size as printed; the test runs the test-sized
# network at a tiny size.
PAPER_SIZE, TINY_SIZE = "test_size=(512, 512)", "test_size=(64, 64)"
PAPER_VARIANT, TEST_SIZED = 'build_mtnet("convnext-tiny"', 'build_mtnet("mtnet-test"'


def first_python_block(text: str) -> str:
    match = re.search(r"^```python\n(.*?)^```", text, re.S | re.M)
    assert match, "README.md has no ```python block"
    return match.group(1)


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors_of(page: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.S | re.M)
    return {github_anchor(h) for h in re.findall(r"^#{1,6} (.+)$", text, re.M)}


def test_readme_has_at_most_300_lines() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines"


def test_github_anchor_rule() -> None:
    assert github_anchor("test.py --video end to end") == "testpy---video-end-to-end"
    assert github_anchor("VSOD ground truth stored as 0/1") == "vsod-ground-truth-stored-as-01"
    assert github_anchor("Faster modes (opt-in)") == "faster-modes-opt-in"


def broken_links(page: Path) -> list[str]:
    """Local links of ``page`` (outside code blocks) whose file or heading does not exist."""
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.S | re.M)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+://", target):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{target}: no file {linked}")
        elif anchor and linked.suffix == ".md" and anchor not in anchors_of(linked):
            broken.append(f"{target}: no heading #{anchor} in {linked.name}")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_local_links_lead_to_existing_files_and_headings(page: Path) -> None:
    broken = broken_links(page)
    assert not broken, "\n".join(broken)


def test_broken_links_are_found(tmp_path: Path) -> None:
    (tmp_path / "B.md").write_text("# Top\n\n## Part two\n", encoding="utf-8")
    page = tmp_path / "A.md"
    page.write_text(
        "## Here\n[ok](B.md#part-two) [ok](#here) [web](https://x.org/#y) [bad](B.md#part-3)"
        " [gone](C.md)\n```\n[in code](D.md)\n```\n",
        encoding="utf-8",
    )
    assert [b.split(":")[0] for b in broken_links(page)] == ["B.md#part-3", "C.md"]


def test_the_first_python_example_runs_from_another_folder(tmp_path: Path) -> None:
    from model.weights import save_model_file
    from tests.conftest import tiny_mtnet

    code = first_python_block(README.read_text(encoding="utf-8"))
    assert PAPER_SIZE in code, f"the example no longer sets {PAPER_SIZE}: update this test"
    assert PAPER_VARIANT in code, f"the example no longer calls {PAPER_VARIANT}: update this test"
    code = code.replace(PAPER_SIZE, TINY_SIZE).replace(PAPER_VARIANT, TEST_SIZED)
    code += '\nprint("segment:", len(masks), masks[0].shape, sorted({int(v) for v in masks[0].ravel()}))\n'

    # What the example expects in the clone: weights in saves/ and the bundled sample. Here
    # in a temporary working folder, the weights random and of the test-sized network (the
    # example's code is unchanged but for the size and the variant).
    (tmp_path / "saves").mkdir()
    save_model_file(tmp_path / "saves" / "mtnet.pth", tiny_mtnet(1))
    (tmp_path / "asset" / "sample").mkdir(parents=True)
    shutil.copy(REPO / "asset" / "sample" / "sample.mp4", tmp_path / "asset" / "sample")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    per_frame = [line for line in lines if line.endswith("foreground")]
    assert len(per_frame) == 32
    assert per_frame[0].startswith("00000 (240, 320) ")
    assert lines[-1].startswith("segment: 32 (240, 320) ")
    assert lines[-1].endswith(" [0, 255]") or lines[-1].endswith((" [0]", " [255]"))
