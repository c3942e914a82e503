"""torch.hub entry points (hubconf.py): loaded from another working directory, in a fresh
interpreter, with untrained test-sized networks at a tiny size (the plumbing is the point)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

LOAD_BOTH = """
import json, sys
import numpy as np
import torch

torch.set_num_threads(1)
clone = sys.argv[1]
try:
    import model
except ModuleNotFoundError:
    outside = True
else:
    outside = False
predictor = torch.hub.load(clone, "mtnet_predictor", source="local", weights=None, seed=0,
                           variant="mtnet-test", task="UVOS", test_size=(64, 64),
                           clip_length=2, device="cpu")
network = torch.hub.load(clone, "mtnet", source="local", variant="mtnet-test",
                         weights=None, seed=0, device="cpu")
rng = np.random.default_rng(0)
frames = [rng.integers(0, 256, (40, 56, 3), dtype=np.uint8) for _ in range(3)]
masks = list(predictor.segment(frames, None))
import inference.export_onnx  # a submodule first imported after loading
from inference import MTNetPredictor

again = MTNetPredictor(network, "UVOS", (64, 64), 2, device="cpu")
same = all(np.array_equal(a, b) for a, b in zip(masks, again.segment(frames, None)))
print(json.dumps({
    "outside": outside,
    "predictor": type(predictor).__name__,
    "network": type(network).__name__,
    "model_file": sys.modules["model"].__file__,
    "shapes": [list(m.shape) for m in masks],
    "values": sorted({int(v) for m in masks for v in np.unique(m)}),
    "same_weights": same,
    "clone_on_path": sys.path.count(clone),
}))
"""


def run_python(code: str, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=cwd,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},  # the clone: by hub only
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_both_entry_points_load_from_another_working_directory(tmp_path: Path) -> None:
    done = run_python(LOAD_BOTH, tmp_path, str(REPO))
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["outside"], "the project must not be importable from the temporary folder"
    assert got["predictor"] == "MTNetPredictor"
    assert got["network"] == "MTNet"
    assert Path(got["model_file"]).resolve().parent == REPO / "model"
    assert got["shapes"] == [[40, 56]] * 3  # masks at each frame's own size
    assert set(got["values"]) <= {0, 255}
    assert got["same_weights"], "seed=0 must give the same untrained network both ways"
    assert got["clone_on_path"] == 1  # kept importable after loading, entered once


def test_entry_points_pass_weights_files_and_options(tmp_path: Path) -> None:
    code = """
    import json, sys
    import torch

    torch.set_num_threads(1)
    clone, weights = sys.argv[1], sys.argv[2]
    net = torch.hub.load(clone, "mtnet", source="local", variant="mtnet-test", weights=None,
                         seed=3, device="cpu")
    torch.save({"it": 0, "network": {"module." + k: v for k, v in net.state_dict().items()}},
               weights)
    loaded = torch.hub.load(clone, "mtnet", source="local", weights=weights, device="cpu")
    predictor = torch.hub.load(clone, "mtnet_predictor", source="local", weights=weights,
                               task="VSOD", test_size=[128, 64], clip_length=4,
                               device="cpu", precision="bf16")
    print(json.dumps({
        "loaded_equal": all(torch.equal(a, b) for a, b in
                            zip(net.state_dict().values(), loaded.state_dict().values())),
        "task": predictor.task, "size": list(predictor.test_size),
        "clip": predictor.clip_length, "precision": predictor.describe()["precision"],
    }))
    """
    done = run_python(code, tmp_path, str(REPO), str(tmp_path / "net.pth"))
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got == {
        "loaded_equal": True,
        "task": "VSOD",
        "size": [128, 64],
        "clip": 4,
        "precision": "bf16",
    }


def test_the_default_weights_are_the_clones_saves_file(tmp_path: Path) -> None:
    code = """
    import sys
    import torch

    try:
        torch.hub.load(sys.argv[1], "mtnet", source="local", device="cpu")
    except Exception as error:  # the clone's saves/mtnet.pth is absent in a fresh clone
        print(type(error).__name__, error)
    else:
        print("loaded")
    """
    done = run_python(code, tmp_path, str(REPO))
    assert done.returncode == 0, done.stderr
    if (REPO / "saves" / "mtnet.pth").is_file():
        assert done.stdout.strip() == "loaded"
    else:
        assert str(REPO / "saves" / "mtnet.pth") in done.stdout


def test_entry_points_are_documented() -> None:
    sys.path.insert(0, str(REPO))
    try:
        import hubconf
    finally:
        sys.path.remove(str(REPO))
    for name in ("mtnet", "mtnet_predictor"):
        doc = getattr(hubconf, name).__doc__
        assert "weights" in doc and "Returns" in doc and "UNTRAINED" in doc, name
