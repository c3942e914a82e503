"""The untrained network is said: ``build_mtnet`` without weights warns, training does not."""

from __future__ import annotations

import logging

import torch

from inference.weights_args import RANDOM_SEED
from model import build_mtnet
from model.build import UNTRAINED_WARNING
from training.config import config_from_args
from training.trainer import _setup
from util.distributed import DistInfo


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_build_without_weights_warns_where_weights_come_from(caplog):
    with caplog.at_level(logging.WARNING, logger="model.build"):
        build_mtnet(device="cpu", seed=RANDOM_SEED)
    (message,) = [m for m in _warnings(caplog) if "UNTRAINED" in m]
    assert message == UNTRAINED_WARNING
    assert "meaningless" in message
    assert "saves/README.md" in message and "https://github.com/hy0523/MTNet" in message


def test_untrained_ok_builds_silently(caplog):
    with caplog.at_level(logging.WARNING, logger="model.build"):
        build_mtnet(device="cpu", seed=RANDOM_SEED, untrained_ok=True)
    assert not any("UNTRAINED" in m for m in _warnings(caplog))


def test_training_builds_without_the_warning_and_keeps_its_seed(tmp_path, caplog):
    argv = ["--stage", "main_train", "--exp", str(tmp_path), "--device", "cpu", "--seed", "5"]
    cfg = config_from_args(argv)
    info = DistInfo(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
    with caplog.at_level(logging.WARNING):
        setup = _setup(cfg, info, use_amp=False)
    assert not any("UNTRAINED" in m for m in _warnings(caplog))
    # the training network is the builder's network of --seed (seeded before building)
    reference = build_mtnet(device="cpu", seed=5, untrained_ok=True)
    trained = setup.model.state_dict()
    for key, value in reference.state_dict().items():
        assert torch.equal(trained[key], value), key


def test_test_py_says_it_once_naming_its_flag(tmp_path, caplog):
    from inference.config import parse_config
    from inference.session import build_model

    cfg = parse_config(["--random_weights", "--output_dir", str(tmp_path)])
    with caplog.at_level(logging.WARNING):
        model = build_model(cfg, torch.device("cpu"))
    (message,) = [m for m in _warnings(caplog) if "UNTRAINED" in m]
    assert message.startswith("--random_weights: the network is UNTRAINED")
    reference = build_mtnet(device="cpu", seed=RANDOM_SEED, untrained_ok=True)
    assert all(
        torch.equal(a, b) for a, b in zip(model.parameters(), reference.parameters(), strict=True)
    )
