"""``--num_workers`` is capped by the clips to read and the cores, and the cap is said once.

Thirty reading processes for two clips would start readers, and take memory, with nothing to do.
"""

from __future__ import annotations

import logging
import os

import torch

from inference import config
from inference.runner import reading_processes
from util import resources


def test_requested_workers_are_capped_by_clips_and_cores(monkeypatch, caplog) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    monkeypatch.setattr(resources, "_said", set())
    cpu = torch.device("cpu")
    with caplog.at_level(logging.INFO):
        assert reading_processes(config.TestConfig(num_workers=30), cpu, clips=2) == 2
        assert reading_processes(config.TestConfig(num_workers=30), cpu, clips=2) == 2
        assert reading_processes(config.TestConfig(num_workers=30), cpu, clips=100) == 8
        assert reading_processes(config.TestConfig(num_workers=3), cpu, clips=100) == 3
        assert reading_processes(config.TestConfig(num_workers=0), cpu, clips=100) == 0
    lines = [r.getMessage() for r in caplog.records if "--num_workers" in r.getMessage()]
    assert lines == [
        "--num_workers 30: 2 reading processes (2 clips to read, 8 cores)",
        "--num_workers 30: 8 reading processes (100 clips to read, 8 cores)",
    ]


def test_the_default_is_capped_by_the_clips_too(monkeypatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
    assert reading_processes(config.TestConfig(), torch.device("cuda"), clips=1) == 1
