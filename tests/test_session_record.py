"""The session record of a test.py run (inference.record, inference.session): built once,
written to test_config.json, compared field by field by --skip_existing; the weights hashed
once; --random_weights for data sets; the missing-weights message."""

from __future__ import annotations

import builtins
import dataclasses
import hashlib
import io
import json
import logging
import re
from pathlib import Path

import numpy as np
import pytest

from inference.config import TestConfig as RunConfig  # not a test class
from inference.record import (
    RECORD_FORM,
    MaskSettings,
    SessionRecord,
    check_same,
    first_difference,
    write_record,
)
from inference.session import untrained_warning
from inference.weights_args import RANDOM_SEED, RANDOM_WEIGHTS, RELEASE_URL
from model import build_mtnet
from model.weights import save_model_file
from tests.synthetic_videos import make_dataset
from util.cpu import cpu_description
from util.errors import InputError
from util.image import read_grey

RUN = ["--device", "cpu", "--num_workers", "0", "--test_length", "3", "--test_size", "64", "64"]


def a_record(**changes: object) -> SessionRecord:
    masks = MaskSettings(
        weights="ab" * 32,
        encoder_name="convnext-tiny",
        task="UVOS",
        test_size=(64, 64),
        test_length=3,
        precision="fp32",
        runtime="torch",
        channels_last=False,
        compile=False,
        int8_calibration=None,
        frames="png",
        flow={"method": "dis"},
    )
    masks = dataclasses.replace(masks, **changes)
    return SessionRecord(masks, "w.pth", {"device": "cpu", "torch": "x"}, {"output_dir": "o"})


def other_value(value: object) -> object:
    """A value of the same kind that differs from ``value``."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, tuple):
        return tuple(v + 64 for v in value)
    if isinstance(value, dict):
        return {**value, "method": "raft"}
    if value is None:
        return "something"
    return f"{value}-other"


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(MaskSettings)])
def test_every_mask_setting_is_compared(tmp_path, field):
    path = tmp_path / "test_config.json"
    stored = a_record()
    write_record(path, stored)
    check_same(path, stored)  # the same record: nothing to say
    changed = a_record(**{field: other_value(getattr(stored.masks, field))})
    with pytest.raises(InputError) as err:
        check_same(path, changed)
    line = str(err.value)
    assert "\n" not in line and line.startswith(f"{path}: the masks there were begun with {field} ")


def test_host_details_are_recorded_not_compared(tmp_path):
    path = tmp_path / "test_config.json"
    write_record(path, a_record())
    other_host = dataclasses.replace(a_record(), backend={"device": "cpu", "torch": "y"})
    check_same(path, other_host)
    made_by = json.loads(path.read_text())["provenance"]
    assert made_by["torch"] == "x" and made_by["weights_file"] == "w.pth"
    assert made_by["test_size"] == [64, 64]  # as JSON holds it, compared alike


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda r: r.pop("form"),
            "a record of form 1, this run's is form 2 (an older or unknown form);",
        ),
        (
            lambda r: r.update(form=99),
            "a record of form 99, this run's is form 2 (an older or unknown form);",
        ),
        (
            lambda r: r["provenance"].update(mode=r["provenance"].pop("precision")),
            "a record without the field precision (an unknown form);",
        ),
        (
            lambda r: r.pop("provenance"),
            "a record without the field weights (an unknown form);",
        ),
    ],
    ids=["no-form", "unknown-form", "renamed-field", "no-provenance"],
)
def test_older_or_unknown_forms_are_a_mismatch_named_in_one_line(tmp_path, edit, expected):
    path = tmp_path / "test_config.json"
    write_record(path, a_record())
    stored = json.loads(path.read_text())
    edit(stored)
    path.write_text(json.dumps(stored))
    with pytest.raises(InputError, match="^[^\n]*$") as err:
        check_same(path, a_record())
    begun = f"{path}: the masks there were begun with {expected}"
    assert str(err.value).startswith(begun), str(err.value)
    assert RECORD_FORM == 2


def test_an_unreadable_record_or_none_beside_masks_is_a_mismatch(tmp_path):
    path = tmp_path / "test_config.json"
    check_same(path, a_record(), begun=False)  # nothing begun
    with pytest.raises(InputError) as err:
        check_same(path, a_record(), begun=True)
    assert str(err.value) == (
        f"{path}: no record of the run that wrote the masks there; expected it to complete "
        "them with --skip_existing, or another --output_dir / --model_name"
    )
    path.write_text("{not json")
    with pytest.raises(InputError) as err:
        check_same(path, a_record())
    assert str(err.value) == (
        f"{path}: the masks there were begun with a record that is not a JSON object (an "
        "unknown form); expected the same settings to complete them with --skip_existing, "
        "or another --output_dir / --model_name"
    )
    assert first_difference([1, 2], a_record()) == (
        "a record that is not a JSON object (an unknown form)"
    )


# --- test.py ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("data") / "SYN")


@pytest.fixture(scope="module")
def seeded_weights(tmp_path_factory) -> Path:
    """The untrained network of --random_weights, saved as a weights file."""
    path = tmp_path_factory.mktemp("weights") / "seeded.pth"
    save_model_file(path, build_mtnet(device="cpu", seed=RANDOM_SEED))
    return path


def count_opens(monkeypatch: pytest.MonkeyPatch, path: Path) -> list[Path]:
    """The opens of ``path`` from now on (``open``, ``io.open`` and pathlib alike), as a list
    that grows."""
    opened: list[Path] = []
    real = io.open

    def counting(file, *args, **kwargs):
        if isinstance(file, str | Path) and Path(file).resolve() == path.resolve():
            opened.append(path)
        return real(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting)
    monkeypatch.setattr(io, "open", counting)
    return opened


def error_line(script, capsys, args: list[str]) -> str:
    capsys.readouterr()
    assert script.main(args) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1
    return lines[0]


def test_record_of_a_run_then_skip_existing_names_the_changed_field(
    script, data, seeded_weights, tmp_path, capsys, monkeypatch
):
    opened = count_opens(monkeypatch, seeded_weights)
    args = ["--test_model", str(seeded_weights), "--test_dataset", str(data)]
    args += ["--output_dir", str(tmp_path), *RUN]
    assert script.main(args) == 0
    assert opened == [seeded_weights]  # read once: hashed and loaded from the same bytes

    record = json.loads((tmp_path / "MTNet" / "UVOS" / "test_config.json").read_text())
    made_by = record["provenance"]
    assert record["form"] == RECORD_FORM and record["test_model"] == str(seeded_weights)
    assert made_by["weights"] == hashlib.sha256(seeded_weights.read_bytes()).hexdigest()
    assert made_by["weights_file"] == str(seeded_weights)
    assert (made_by["test_size"], made_by["test_length"], made_by["task"]) == ([64, 64], 3, "UVOS")
    assert (made_by["frames"], made_by["flow"]) == (None, None)  # data sets: flows as given
    assert made_by["device"] == "cpu" and made_by["cpu"] == cpu_description()

    (tmp_path / "MTNet" / "UVOS" / "SYN" / "a" / "00004.png").unlink()  # an interrupted run
    changed = [*args, "--skip_existing", "--test_length", "2"]
    line = error_line(script, capsys, changed)
    record_path = tmp_path / "MTNet" / "UVOS" / "test_config.json"
    again = "expected the same settings to complete them with --skip_existing, or another "
    again += "--output_dir / --model_name"
    assert line == (
        f"test.py: error: {record_path}: the masks there were begun with test_length 3, "
        f"this run has 2; {again}"
    )

    stored = json.loads((tmp_path / "MTNet" / "UVOS" / "test_config.json").read_text())
    del stored["form"]  # a record written by an older version
    (tmp_path / "MTNet" / "UVOS" / "test_config.json").write_text(json.dumps(stored))
    line = error_line(script, capsys, [*args, "--skip_existing"])
    assert line == (
        f"test.py: error: {record_path}: the masks there were begun with a record of form 1, "
        f"this run's is form 2 (an older or unknown form); {again}"
    )
    (tmp_path / "MTNet" / "UVOS" / "test_config.json").unlink()  # masks without a record
    line = error_line(script, capsys, [*args, "--skip_existing"])
    assert line == (
        f"test.py: error: {record_path}: no record of the run that wrote the masks there; "
        "expected it to complete them with --skip_existing, or another --output_dir / "
        "--model_name"
    )
    assert not (tmp_path / "MTNet" / "UVOS" / "SYN" / "a" / "00004.png").exists()


def test_random_weights_for_data_sets_warn_and_equal_the_seeded_network(
    script, data, seeded_weights, tmp_path, caplog
):
    common = ["--test_dataset", str(data), *RUN]
    with caplog.at_level(logging.INFO):
        assert script.main([*common, "--random_weights", "--output_dir", str(tmp_path / "r")]) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("--random_weights" in w and "UNTRAINED" in w and RELEASE_URL in w for w in warnings)
    assert warnings.count(untrained_warning(RunConfig(test_model=None, random_weights=True))) == 1
    # said again at the end
    assert warnings[-1] == "the masks come from an UNTRAINED network (see the warning above)"
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("warming up") for m in messages)
    record = json.loads((tmp_path / "r" / "MTNet" / "UVOS" / "test_config.json").read_text())
    assert record["provenance"]["weights"] == RANDOM_WEIGHTS and record["random_weights"]
    assert record["provenance"]["weights_file"] is None

    args = ["--test_model", str(seeded_weights), "--output_dir", str(tmp_path / "w"), *common]
    assert script.main(args) == 0
    written = sorted((tmp_path / "r").rglob("*.png"))
    assert len(written) == 8
    for path in written:
        other = tmp_path / "w" / path.relative_to(tmp_path / "r")
        assert np.array_equal(read_grey(path), read_grey(other)), path


def test_missing_weights_file_points_to_the_release(script, data, tmp_path, capsys):
    missing = tmp_path / "saves" / "mtnet.pth"
    args = ["--test_model", str(missing), "--test_dataset", str(data), "--output_dir"]
    line = error_line(script, capsys, [*args, str(tmp_path), *RUN])
    assert line == (
        f"test.py: error: {missing}: no such weights file (--test_model); get mtnet.pth from "
        f"the authors' repository {RELEASE_URL} and put it in saves/ (see saves/README.md), "
        "or run --random_weights for a smoke run of the pipeline"
    )
    both = ["--random_weights", "--test_model", "w.pth", "--test_dataset", str(data)]
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        script.main(both)
    assert stop.value.code == 2
    assert (
        capsys.readouterr()
        .err.splitlines()[-1]
        .endswith(": error: argument --test_model: not allowed with argument --random_weights")
    )


def test_progress_bar_counts_frames(script, data, seeded_weights, tmp_path, capsys):
    args = ["--test_model", str(seeded_weights), "--test_dataset", str(data)]
    assert script.main([*args, "--output_dir", str(tmp_path), *RUN]) == 0
    err = capsys.readouterr().err
    # a:5 + b:3 frames, with the rate (tqdm shows s/frame below one frame a second)
    bars = err.split("\r")  # tqdm redraws its line after a carriage return
    assert bars[1].endswith("| 0/8 [00:00<?, ?frame/s]"), bars[1]  # before the first clip
    last = bars[-1].splitlines()[0]
    rate = r"\s*\d+\.\d\d(frame/s|s/frame)"  # tqdm pads it to 5 characters
    assert re.fullmatch(
        rf"UVOS SYN: 100%\|█+\| 8/8 \[\d\d:\d\d<00:00, {rate}, videos=2/2\]", last
    ), last
