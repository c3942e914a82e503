"""The scripts' help pages and flag errors: groups, examples, real defaults, no torch; the
scorers score without torch."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from inference.config import TestConfig as RunConfig  # not a test class
from inference.config import build_parser as inference_parser
from tests.conftest import REPO, load_script
from training.config import STAGE_DEFAULTS
from util.cli import ArgumentParser, unknown_arguments_message

# Runs a script's main with the given arguments in a fresh interpreter, then reports its
# exit status and which heavy libraries were imported on the way.
_WRAPPER = """
import json, runpy, sys
script, *args = sys.argv[1:]
sys.argv = [script, *args]
code = 0
try:
    runpy.run_path(script, run_name="__main__")
except SystemExit as stop:
    code = stop.code
print(json.dumps({"code": code, "torch": "torch" in sys.modules, "cv2": "cv2" in sys.modules}),
      file=sys.stderr)
"""


def _run_fresh(script: str, *args: str) -> tuple[dict, str, str]:
    done = subprocess.run(
        [sys.executable, "-c", _WRAPPER, script, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "100"},
    )
    report = json.loads(done.stderr.strip().splitlines()[-1])
    return report, done.stdout, done.stderr


@pytest.mark.parametrize("script", ["test.py", "train.py"])
def test_help_answers_without_importing_torch(script):
    report, out, _ = _run_fresh(script, "--help")
    assert report == {"code": 0, "torch": False, "cv2": False}
    assert "examples:" in out
    assert "(default: None)" not in out and "(default: False)" not in out


@pytest.mark.parametrize(
    ("script", "argv"),
    [("test.py", ["--devise", "cpu"]), ("train.py", ["--stage", "pre_train", "--devise", "cpu"])],
)
def test_a_mistyped_flag_is_answered_without_torch(script, argv):
    report, _, err = _run_fresh(script, *argv)
    assert report == {"code": 2, "torch": False, "cv2": False}
    assert "unknown flag --devise; did you mean --device?" in err


def test_the_scorers_score_without_importing_torch(tmp_path):
    """Scoring reads PNGs only: neither scorer pays for importing PyTorch."""
    from tests.test_eval_davis import make_dataset, toy_videos
    from tests.test_eval_vsod import make_tree

    gt, pred = toy_videos(n=3)
    davis = ["--gt_path", str(make_dataset(tmp_path, gt, "gt"))]
    davis += ["--result_path", str(make_dataset(tmp_path, pred, "res")), "--workers", "1"]
    report, out, err = _run_fresh("test_scripts/test_for_davis.py", *davis)
    assert report == {"code": 0, "torch": False, "cv2": True}, err
    assert out.splitlines() == [  # the toy videos' scores
        "Video       J(M)     J(O)     J(D)     F(M)     F(O)     F(D)",
        "bear      0.9677   1.0000   0.0000   1.0000   1.0000   0.0000",
        "camel     0.8768   1.0000   0.0000   0.8000   1.0000   0.0000",
        "Average   0.9223   1.0000   0.0000   0.9000   1.0000   0.0000",
        "J&F: 0.9111",
    ]
    make_tree(tmp_path / "vsod", n=3)
    vsod = ["--gt_dir", str(tmp_path / "vsod" / "G"), "--pred_dir", str(tmp_path / "vsod" / "P")]
    report, out, err = _run_fresh("test_scripts/test_vsod/main.py", *vsod, "--workers", "1")
    assert report == {"code": 0, "torch": False, "cv2": True}, err
    assert out.splitlines() == [  # the same predictions under both methods' names
        "Method  Dataset      MAE     maxF     maxE        S",
        "MTNet   DAVIS16   0.5016   0.3091   0.6574   0.3257",
        "MTNet   ViSal     0.4861   0.3352   0.6622   0.3483",
        "Other   DAVIS16   0.5016   0.3091   0.6574   0.3257",
        "Other   ViSal     0.4861   0.3352   0.6622   0.3483",
    ]


def test_test_py_help_groups_and_defaults():
    page = inference_parser().format_help()
    for group in ("data:", "weights and model:", "output:", "speed", "video"):
        assert f"\n{group}" in page, group
    text = " ".join(page.split())  # line breaks of the layout away
    assert "(default: 512 512)" in text  # --test_size, as typed on the command line
    assert "(default: DAVIS16)" in text
    assert "python test.py --video clip.mp4" in text
    # groups order the page only: the parse result is the configuration's defaults
    parsed = vars(inference_parser().parse_args([]))
    expected = {k: v for k, v in vars(RunConfig()).items() if k != "test_model"}
    assert {**parsed, "test_size": tuple(parsed["test_size"])} == expected


def test_train_py_help_shows_each_stages_default(capsys):
    script = load_script("train.py")
    from training.config import build_parser

    text = " ".join(build_parser().format_help().split())  # line breaks of the layout away
    pre, main = STAGE_DEFAULTS["pre_train"], STAGE_DEFAULTS["main_train"]
    assert (
        f"clips per process (default: {pre['batch_size']} (pre_train), "
        f"{main['batch_size']} (main_train))" in text
    )
    assert f"(default: {pre['max_iter']} (pre_train), {main['max_iter']} (main_train))" in text
    assert f"(default: {pre['save_checkpoint_interval']}, both stages)" in text
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:  # the page train.py itself prints
        script.main(["--help"])
    assert stop.value.code == 0
    assert capsys.readouterr().out == build_parser().format_help()


@pytest.mark.parametrize(
    ("module", "argv", "expected"),
    [
        (
            "test.py",
            ["--test_modle", "x.pth"],
            "unknown flag --test_modle; did you mean --test_model?",
        ),
        (
            "train.py",
            ["--stage", "pre_train", "--batch-size", "2"],
            "unknown flag --batch-size; did you mean --batch_size?",
        ),
        ("visualize.py", ["--with_gts"], "unknown flag --with_gts; did you mean --with_gt?"),
    ],
)
def test_scripts_suggest_the_closest_flag(module, argv, expected, capsys):
    script = load_script(module)
    with pytest.raises(SystemExit) as stop:
        script.main(argv)
    assert stop.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if ": error: " in line]
    assert len(errors) == 1 and errors[0].endswith(f": error: {expected}"), errors


def test_module_commands_suggest_the_closest_flag(capsys):
    from dataset.prepare import main as prepare
    from inference.export_onnx import main as export_onnx
    from inference.int8_static import main as int8_static
    from test_scripts.davis_metrics import PROTOCOLS
    from test_scripts.davis_metrics import build_parser as davis_parser
    from util.flow import main as flow

    for run, argv, expected in (
        (prepare, ["davis2016", "--src", "s", "--out", "o", "--flow_methd", "raft"],
         "python -m dataset.prepare: error: unknown flag --flow_methd; did you mean --flow_method?"),
        (flow, ["--frames", "f", "--out", "o", "--raft_itres", "3"],
         "python -m util.flow: error: unknown flag --raft_itres; did you mean --raft_iters?"),
        (export_onnx, ["--random_weights", "--tset_size", "64", "64"],
         "python -m inference.export_onnx: error: unknown flag --tset_size; did you mean --test_size?"),
        (int8_static, ["--random_weights", "--num_vidoes", "2"],
         "python -m inference.int8_static: error: unknown flag --num_vidoes; did you mean --num_videos?"),
        (davis_parser(PROTOCOLS["davis"]).parse_args,
         ["--gt_path", "g", "--result_path", "r", "--jsn", "x"],
         ": error: unknown flag --jsn; did you mean --json?"),  # the program's name: argv[0]
    ):  # fmt: skip
        with pytest.raises(SystemExit) as stop:
            run(argv)
        assert stop.value.code == 2
        errors = [line for line in capsys.readouterr().err.splitlines() if ": error: " in line]
        assert len(errors) == 1 and errors[0].endswith(expected), errors
        if not expected.startswith(": "):
            assert errors[0] == expected


def test_unknown_arguments_message():
    names = ["--test_model", "--test_size", "--video"]
    assert unknown_arguments_message(["stray"], names) == "unrecognized arguments: stray"
    assert unknown_arguments_message(["--vidoe=a.mp4"], names) == (
        "unknown flag --vidoe; did you mean --video?"
    )
    assert unknown_arguments_message(["--zzz", "-5"], names) == "unknown flag --zzz"
    assert unknown_arguments_message(["--zzz", "--tset_size", "1"], names) == (
        "unknown flags: --zzz, --tset_size (did you mean --test_size?)"
    )


def test_flow_takes_flow_method_and_keeps_method():
    from util.flow import build_parser

    parser = build_parser()
    new = parser.parse_args(["--frames", "f", "--out", "o", "--flow_method", "raft"])
    old = parser.parse_args(["--frames", "f", "--out", "o", "--method", "raft"])
    assert vars(new) == vars(old) and new.method == "raft"
    assert parser.parse_args(["--root", "r"]).method == "dis"


def test_help_formatter_shows_real_defaults_only():
    p = ArgumentParser(prog="x", examples="x --size 3 4")
    p.add_argument("--size", type=int, nargs=2, default=(64, 64), help="H W")
    p.add_argument("--switch", action="store_true", help="on or off")
    p.add_argument("--maybe", default=None, help="no default")
    p.add_argument("--told", default=5, help="said here (default: five)")
    p.add_argument("--percent", default="50%", help="a share")
    text = p.format_help()
    assert "H W (default: 64 64)" in text
    assert "on or off\n" in text and "no default\n" in text
    assert "said here (default: five)\n" in text
    assert "a share (default: 50%)" in text
    assert text.endswith("examples:\n  x --size 3 4\n")
