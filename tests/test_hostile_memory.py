"""A test size whose clips cannot fit in memory is refused before any work.

Without a bound, a huge ``--test_size`` ended in an allocator traceback or the kernel's
out-of-memory killer minutes later. ``util.resources.check_clip_memory`` is the one
estimate, used by test.py and by the predictor, with an override.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from inference import MTNetPredictor
from model import build_mtnet
from tests.conftest import load_script
from util import resources
from util.errors import InputError
from util.resources import GIB, MemoryRoom, cgroup_room, check_clip_memory, clip_memory_bytes

HUGE = (8192, 8192)  # 64 Mpx per frame: about 577 GiB for clips of 9


def test_the_estimate_is_conservative_at_the_measured_points() -> None:
    # peak RSS measured on the CPU (docs/PERFORMANCE.md): 512x512 clips of 3 about 1.45 GiB,
    # clips of 9 about 3.1 GiB
    assert clip_memory_bytes((512, 512), 3) == GIB + 1024 * 512 * 512 * 3
    assert clip_memory_bytes((512, 512), 3) > 1.45 * GIB
    assert clip_memory_bytes((512, 512), 9) > 3.1 * GIB
    assert clip_memory_bytes((512, 512), 9) < 1.2 * 3.1 * GIB  # conservative, not absurd


def test_refused_with_the_estimate_the_limit_and_the_flags(monkeypatch) -> None:
    monkeypatch.setattr(resources, "available_memory", lambda d: MemoryRoom(2 * GIB, "test"))
    check_clip_memory((256, 256), 9, "cpu")  # 1.56 GiB < 1.8 GiB
    with pytest.raises(
        InputError,
        match=r"^clips of 9 frames at 512x512 need about 3\.2 GiB, more than 90% of the "
        r"2\.0 GiB available \(test\); lower --test_size or --test_length, or skip this "
        r"check with --no_memory_check$",
    ):
        check_clip_memory((512, 512), 9, "cpu")


def test_cgroup_v2_and_v1_limits(tmp_path: Path) -> None:
    proc = tmp_path / "cgroup"
    proc.write_text("0::/job\n")
    (tmp_path / "job").mkdir()
    (tmp_path / "job" / "memory.max").write_text("4294967296\n")
    (tmp_path / "job" / "memory.current").write_text("1073741824\n")
    assert cgroup_room(tmp_path, proc) == 3 * GIB
    (tmp_path / "job" / "memory.max").write_text("max\n")
    assert cgroup_room(tmp_path, proc) is None
    proc.write_text("4:memory:/box\n0::/\n")
    v1 = tmp_path / "memory" / "box"
    v1.mkdir(parents=True)
    (v1 / "memory.limit_in_bytes").write_text(str(2 * GIB))
    (v1 / "memory.usage_in_bytes").write_text(str(GIB // 2))
    assert cgroup_room(tmp_path, proc) == GIB + GIB // 2


def test_test_py_refuses_a_huge_test_size_before_reading_weights(capsys, tmp_path) -> None:
    test_script = load_script("test.py")
    argv = ["--test_model", str(tmp_path / "absent.pth"), "--test_dataset", str(tmp_path)]
    argv += ["--output_dir", str(tmp_path / "out"), "--test_size", *map(str, HUGE)]
    assert test_script.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0]
    assert err[0].startswith("test.py: error: clips of 9 frames at 8192x8192 need about 577.0 GiB")
    assert err[0].endswith(
        "lower --test_size or --test_length, or skip this check with --no_memory_check"
    )
    assert not (tmp_path / "out").exists()


def test_test_py_no_memory_check_skips_it(capsys, tmp_path) -> None:
    test_script = load_script("test.py")
    argv = ["--test_model", str(tmp_path / "absent.pth"), "--test_dataset", str(tmp_path)]
    argv += ["--output_dir", str(tmp_path / "out"), "--test_size", *map(str, HUGE)]
    assert test_script.main([*argv, "--no_memory_check"]) == 2
    assert "need about" not in capsys.readouterr().err  # the next check speaks instead


def test_the_predictor_checks_too_with_an_override() -> None:
    model = build_mtnet(device="cpu", seed=0)
    with pytest.raises(
        InputError,
        match=r"need about 577\.0 GiB.*lower test_size or clip_length, "
        r"or skip this check with memory_check=False",
    ):
        MTNetPredictor(model, test_size=HUGE, clip_length=9)
    assert (
        MTNetPredictor(model, test_size=HUGE, clip_length=9, memory_check=False).test_size == HUGE
    )


def test_torchrun_processes_on_one_machine_share_its_memory(monkeypatch) -> None:
    monkeypatch.setattr(resources, "mem_available", lambda: 8 * GIB)
    monkeypatch.setattr(resources, "cgroup_room", lambda: None)
    monkeypatch.setattr(resources, "_own_rss", lambda: GIB)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    alone = resources.available_memory("cpu")
    assert alone.bytes == 9 * GIB
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    shared = resources.available_memory("cpu")
    assert shared.bytes == 2 * GIB + GIB
    assert shared.source.startswith("a 1/4 share (torchrun's processes here) of the system's")
