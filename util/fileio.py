"""Atomic file writes and output-folder checks.

Writes go to a temporary file beside the target that is renamed into place, so readers
never see half a file. A temporary name carries the writer's host and process id
(``.<stem>.tmp~<host>~<pid>~<random><suffix>``); the first write of a process into a
folder removes the temporary files that a dead process of this host left there (a killed
run's half-written checkpoint can be 100 MB). A file of a live process, of another host
or of an unknown writer is never touched.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import tempfile
import threading
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

from .errors import InputError

log = logging.getLogger(__name__)

_TEMP_RE = re.compile(r"^\..*\.tmp~(?P<host>[A-Za-z0-9._-]+)~(?P<pid>\d+)~[0-9a-f]{8}(\.[^.~]*)?$")
_cleaned: set[str] = set()  # folders this process has already swept
_cleaned_lock = threading.Lock()


def _host() -> str:
    """This machine's name as it appears in temporary file names (no separators)."""
    return re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname()) or "host"


def temp_name(path: Path) -> Path:
    """The temporary file beside ``path`` that this process writes before the rename."""
    rand = uuid.uuid4().hex[:8]
    return path.parent / f".{path.stem}.tmp~{_host()}~{os.getpid()}~{rand}{path.suffix}"


def _pid_alive(pid: int) -> bool:
    """Whether a process of this id runs on this host (unsure counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # PermissionError: alive, another user's
        return True
    return True


def remove_stale_temp_files(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary files of dead processes of this host from ``folder``.

    Only names made by :func:`temp_name` are considered; the writer must be on this host,
    not this process and no longer running. POSIX only (elsewhere nothing is removed).
    Returns the removed paths.
    """
    if os.name != "posix":
        return []
    host, me, removed = _host(), os.getpid(), []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    for entry in entries:
        match = _TEMP_RE.match(entry.name)
        if not match or match["host"] != host or int(match["pid"]) == me:
            continue
        if _pid_alive(int(match["pid"])) or not entry.is_file(follow_symlinks=False):
            continue
        with contextlib.suppress(FileNotFoundError):  # another process swept it first
            os.unlink(entry.path)
            removed.append(Path(entry.path))
            log.info("removed %s, left by a process that no longer runs", entry.path)
    return removed


def _sweep_once(folder: Path) -> None:
    key = os.path.abspath(folder)
    with _cleaned_lock:
        if key in _cleaned:
            return
        _cleaned.add(key)
    remove_stale_temp_files(folder)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it to ``path`` on success.

    The temporary name keeps the target's suffix so that writers that pick a format by
    extension (PIL, OpenCV, torch) still work. On an exception the temporary file is
    removed and ``path`` is left untouched. The first call of a process for a folder also
    removes temporary files that dead processes left there.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _sweep_once(path.parent)
    tmp = temp_name(path)
    # os.open with 0o666 honours the umask (mkstemp would make the file readable by us alone)
    os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _nearest_existing(path: Path) -> Path:
    """``path`` itself or its nearest parent that exists."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(".")


def _check_dir(folder: Path, label: str) -> None:
    """Check that ``folder`` is or can become a folder that takes files: its nearest
    existing part must be a folder in which a file can be made (a hidden probe file is
    made there and removed at once; nothing else is created). Errors start with ``label``.
    """
    existing = _nearest_existing(folder)
    if not existing.is_dir():
        raise InputError(f"{label}: {existing} is a file; expected a folder there")
    try:
        handle, probe = tempfile.mkstemp(dir=existing, prefix=".write-test-")
        os.close(handle)
        os.unlink(probe)
    except OSError as err:
        reason = err.strerror or type(err).__name__
        where = existing if existing == folder else f"{existing} (to make {folder})"
        raise InputError(
            f"{label}: cannot write in {where} ({reason}); expected a writable folder"
        ) from None


def check_output_dir(path: str | os.PathLike, flag: str) -> Path:
    """Check that the output folder ``path`` can be made (if missing) and written.

    Called before any work, so that a bad output path stops a run before hours of
    computing; the folder itself is made by the writes that follow. ``flag`` names the
    option the path came from (``--output_dir``).

    Raises:
        InputError: one line naming the flag and the path: a file is in the way, or the
            folder cannot be written (read-only, no permission, ``/proc``).
    """
    path = Path(path)
    _check_dir(path, f"{flag} {path}")
    return path


def check_output_file(path: str | os.PathLike, flag: str) -> Path:
    """Check that the file ``path`` can be written (``--json``).

    Raises:
        InputError: ``path`` is a folder, or its folder fails :func:`check_output_dir`.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{flag} {path}: is a folder; expected a file name to write to")
    _check_dir(path.parent, f"{flag} {path}")
    return path


def check_no_links(root: str | os.PathLike, paths: Iterable[str | os.PathLike], flag: str) -> None:
    """Refuse to write through a symbolic link inside the folder a user gave.

    Every part of each of ``paths`` below ``root`` (the folder of ``flag``; it may itself be
    a link) that exists must be a real folder or file: a link there would make a command
    write, or overwrite, outside the folder it was given. Called by every writer before
    its work (test.py, visualize.py, ``util.flow``, ``dataset.prepare``, train.py).

    Raises:
        InputError: one line naming the first link and where it leads.
    """
    root = Path(root)
    real: set[Path] = set()  # parts found real: a data set's masks share their folders
    absent: set[Path] = set()
    for path in paths:
        current = root
        for part in Path(path).relative_to(root).parts:
            current = current / part
            if current in real:
                continue
            if current in absent:
                break
            if current.is_symlink():
                raise InputError(
                    f"{current}: a symbolic link inside {flag} {root} (to "
                    f"{os.readlink(current)}); expected real folders and files there, so that "
                    f"nothing is written outside {flag} (remove the link or give another {flag})"
                )
            if not current.exists():
                absent.add(current)
                break  # nothing below a missing part exists yet
            real.add(current)


def read_json(path: str | os.PathLike) -> dict:
    """A JSON object written by :func:`write_json` (records of what files were made from);
    ``{}`` when the file is missing, unreadable or not an object."""
    try:
        obj = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return obj if isinstance(obj, dict) else {}


def write_json(path: str | os.PathLike, obj: object) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2) + "\n")
