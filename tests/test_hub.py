"""torch.hub entry points (hubconf.py): loaded from another working directory, in a fresh
interpreter, with untrained test-sized networks at a tiny size (the plumbing is the point)."""

from __future__ import annotations

import ast
import inspect
import json
import os
import re
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


def _hubconf():
    """The clone's hubconf module, imported as torch.hub imports it (the clone on sys.path)."""
    sys.path.insert(0, str(REPO))
    try:
        import hubconf
    finally:
        sys.path.remove(str(REPO))
    return hubconf


def test_entry_points_are_documented() -> None:
    hubconf = _hubconf()
    for name in ("mtnet", "mtnet_predictor"):
        doc = getattr(hubconf, name).__doc__
        assert "weights" in doc and "Returns" in doc and "UNTRAINED" in doc, name


def _code_blocks(text: str) -> list[str]:
    """The Python code of ``text``: its ```python fences and its indented blocks."""
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    blocks += re.findall(r"(?:^(?: {4}.*)?\n)+", text, flags=re.M)
    return [textwrap.dedent(block) for block in blocks]


def _hub_calls(text: str) -> list[tuple[str, dict[str, object]]]:
    """(entry point, keyword arguments) of every ``torch.hub.load`` call in ``text``'s code;
    the value of a keyword that is not a literal is ``...``."""
    calls = []
    for block in _code_blocks(text):
        try:
            tree = ast.parse(block)
        except SyntaxError:
            continue  # prose indented for other reasons
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "torch.hub.load":
                entry = ast.literal_eval(node.args[1])
                kwargs = {}
                for keyword in node.keywords:
                    try:
                        kwargs[keyword.arg] = ast.literal_eval(keyword.value)
                    except ValueError:
                        kwargs[keyword.arg] = ...
                calls.append((entry, kwargs))
    return calls


def _documented_args(doc: str) -> list[str]:
    """The parameter names an entry point's docstring lists under ``Args:``."""
    args = doc.split("Args:")[1].split("Returns:")[0]
    return re.findall(r"^ {8}(\*{0,2}\w+):", args, flags=re.M)


def test_the_documented_calls_fit_the_entry_points() -> None:
    """The calls that the module docstring and the README show bind to the entry points'
    real parameters (named ones, or for mtnet_predictor MTNetPredictor's own options)."""
    from inference import MTNetPredictor

    hubconf = _hubconf()
    predictor_options = [
        name
        for name, p in inspect.signature(MTNetPredictor).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for where, text in (("hubconf.py", hubconf.__doc__), ("README.md", readme)):
        calls = _hub_calls(text)
        assert sorted({entry for entry, _ in calls}) == ["mtnet", "mtnet_predictor"], where
        for entry, kwargs in calls:
            assert kwargs.pop("source") == "local", (where, entry)
            function = getattr(hubconf, entry)
            signature = inspect.signature(function)
            signature.bind(**kwargs)  # a TypeError names a parameter the entry point lacks
            named = [n for n, p in signature.parameters.items() if p.kind is not p.VAR_KEYWORD]
            allowed = named + (predictor_options if entry == "mtnet_predictor" else [])
            assert set(kwargs) <= set(allowed), (where, entry, sorted(set(kwargs) - set(allowed)))
            if kwargs.get("weights", ...) is None:  # shown as the untrained network
                assert kwargs.get("seed") == 0, (where, entry)


def test_the_docstrings_list_the_real_parameters_and_defaults() -> None:
    from inference import MTNetPredictor
    from inference.weights_args import RANDOM_SEED
    from model import build_mtnet

    hubconf = _hubconf()
    for name in ("mtnet", "mtnet_predictor"):
        function = getattr(hubconf, name)
        signature = inspect.signature(function)
        stars = {inspect.Parameter.VAR_KEYWORD: "**", inspect.Parameter.VAR_POSITIONAL: "*"}
        real = [stars.get(p.kind, "") + n for n, p in signature.parameters.items()]
        assert _documented_args(function.__doc__) == real, name
        # "by default the clone's saves/mtnet.pth"
        assert signature.parameters["weights"].default == REPO / "saves" / "mtnet.pth", name
        assert signature.parameters["device"].default == "auto", name
        assert signature.parameters["variant"].default is None, name
        assert signature.parameters["seed"].default is None, name
    assert RANDOM_SEED == 0  # "seed=0 with weights=None is the network test.py runs"
    assert inspect.signature(build_mtnet).parameters["device"].default == "auto"
    # the predictor's defaults are MTNetPredictor's, and its **options are the rest of
    # MTNetPredictor's options
    own = inspect.signature(hubconf.mtnet_predictor).parameters
    library = inspect.signature(MTNetPredictor).parameters
    for name in ("task", "test_size", "clip_length"):
        assert own[name].default == library[name].default, name
    assert (own["task"].default, own["test_size"].default, own["clip_length"].default) == (
        "UVOS",
        (512, 512),
        9,
    )
    options_doc = hubconf.mtnet_predictor.__doc__.split("**options:")[1].split("Returns:")[0]
    documented = re.findall(r"``(\w+)``", options_doc)
    options = [
        n for n, p in library.items() if p.kind is inspect.Parameter.KEYWORD_ONLY and n not in own
    ]
    assert documented == ["MTNetPredictor", *options]
