"""The session record: what one test.py run is, written to ``test_config.json``.

A run's masks depend on the weights (their SHA-256), the network's variant, the task, the
test size and clip length, the precision and runtime with their options, and for ``--video``
on how the frames are kept and how the flows are made. :class:`MaskSettings` holds exactly
these, typed; ``--skip_existing`` completes a folder only when every one of its fields equals
the folder's record (:func:`check_same`), so a field cannot drop out of the comparison
unnoticed: a renamed or new field makes every older record a mismatch.

The file (``util.layout``: ``{task}/test_config.json`` for data sets,
``{task}_videos/{name}/test_config.json`` for ``--video``) is::

    {"form": 2, <test.py's settings>..., "provenance": {<MaskSettings fields>...,
     "weights_file": ..., <inference.runtime's describe(): device, versions, CPU>...}}

The settings and the backend's description are for people; only the form and the
``MaskSettings`` fields are compared.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from util.errors import InputError
from util.fileio import write_json

RECORD_FORM = 2  # form 1 (no "form" key): provenance keys picked by name, no video fields


@dataclass(frozen=True)
class MaskSettings:
    """Everything that decides the masks' values (compared field by field).

    Attributes:
        weights: the weights file's SHA-256, or ``weights_args.RANDOM_WEIGHTS``.
        encoder_name: the network's variant.
        task: ``"UVOS"`` or ``"VSOD"``.
        test_size: the network's input (H, W).
        test_length: frames per clip.
        precision, runtime, channels_last, compile: how the network runs.
        int8_calibration: the calibration file's SHA-256 (``int8_static``), else ``None``.
        frames: ``--video``: how the frames are kept (``"png"`` decoded into the work folder,
            ``"in place"`` for a folder of frames); ``None`` for data sets.
        flow: ``--video``: ``FlowSettings.record()`` of the flows made; ``None`` for data
            sets, whose flows are given.
    """

    weights: str
    encoder_name: str
    task: str
    test_size: tuple[int, int]
    test_length: int
    precision: str
    runtime: str
    channels_last: bool
    compile: bool
    int8_calibration: str | None = None
    frames: str | None = None
    flow: dict[str, object] | None = None


@dataclass(frozen=True)
class SessionRecord:
    """One run: the settings that decide its masks, the weights file read, the backend's
    description (device, library versions, CPU) and test.py's settings as given."""

    masks: MaskSettings
    weights_file: str | None
    backend: dict[str, object]
    settings: dict[str, object]
    form: int = RECORD_FORM

    def to_json(self) -> dict[str, object]:
        """The record as ``test_config.json`` holds it (see the module docstring)."""
        provenance = {**self.backend, "weights_file": self.weights_file, **asdict(self.masks)}
        return _plain({"form": self.form, **self.settings, "provenance": provenance})


def write_record(path: str | os.PathLike, record: SessionRecord) -> None:
    """Write ``record`` to ``path`` atomically."""
    write_json(path, record.to_json())


def check_same(path: str | os.PathLike, record: SessionRecord, begun: bool = True) -> None:
    """``--skip_existing``: refuse, in one line naming the first difference, to complete
    masks whose record at ``path`` differs from ``record`` (the folder would mix two
    models' masks). A record of an older or unknown form is a difference, and so is no
    record beside masks already written (``begun``); no record and no masks is none."""
    path = Path(path)
    if not path.exists():
        if begun:
            raise InputError(
                f"{path}: no record of the run that wrote the masks there; expected it to "
                "complete them with --skip_existing, or another --output_dir / --model_name"
            )
        return
    difference = first_difference(_read(path), record)
    if difference is not None:
        raise InputError(
            f"{path}: the masks there were begun with {difference}; expected the same "
            "settings to complete them with --skip_existing, or another --output_dir / "
            "--model_name"
        )


def first_difference(before: object, record: SessionRecord) -> str | None:
    """The first way a stored record (parsed JSON) differs from ``record``, in words, or
    ``None`` when every ``MaskSettings`` field is the same."""
    if not isinstance(before, dict):
        return "a record that is not a JSON object (an unknown form)"
    form = before.get("form", 1)
    if form != record.form:
        return (
            f"a record of form {form}, this run's is form {record.form} (an older or unknown form)"
        )
    made_by = before.get("provenance")
    now = record.to_json()["provenance"]
    for field in fields(MaskSettings):
        if not isinstance(made_by, dict) or field.name not in made_by:
            return f"a record without the field {field.name} (an unknown form)"
        if made_by[field.name] != now[field.name]:
            return f"{field.name} {made_by[field.name]}, this run has {now[field.name]}"
    return None


def done_stamp(masks: MaskSettings, source: dict | None = None) -> dict:
    """What a video's ``.done.json`` holds (``util.layout.done_path``): the settings that
    made its masks and, for ``--video``, what its frames were made from (``source``).

    ``--skip_existing`` takes a video as finished only when its stamp equals this run's, so
    neither a run with other settings that was stopped before it rewrote every video nor a
    changed source under the same name leaves masks that a record names wrongly.
    """
    return _plain({"form": RECORD_FORM, "masks": asdict(masks), "source": source})


def read_stamp(path: str | os.PathLike) -> object:
    """The stamp at ``path`` as parsed JSON, or ``None`` when absent or unreadable."""
    return _read(Path(path))


def _read(path: Path) -> object:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # unreadable: a record of no known form


def _plain(value: object) -> object:
    """``value`` as JSON reads it back (tuples become lists), so that stored and new
    records compare alike."""
    return json.loads(json.dumps(value))
