"""The set-up of a test.py run: the settings checked, the weights read and hashed once, the
predictor made, and the run's record (``inference.record``) built, in one place.

    session = open_session(cfg, device)             # data sets
    session = open_session(cfg, device, source)     # --video: source is a VideoInput
    session.predictor.predict(clip)
    write_record(path, session.record)
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from model import build_mtnet
from util.checkpoint import LoadedFile, load_hashed_file
from util.errors import InputError
from util.fileio import check_no_links

from . import config
from .config import TestConfig
from .predictor import MTNetPredictor
from .record import MaskSettings, SessionRecord
from .runtime import Calibration, check_runtime, describe_line, export_onnx, load_calibration
from .runtime.onnx_export import exported_weights, weights_metadata
from .video_input import VideoInput
from .weights_args import RANDOM_SEED, RANDOM_WEIGHTS, WEIGHTS_SOURCE

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Session:
    """A run's predictor and the record of what it is."""

    predictor: MTNetPredictor
    record: SessionRecord


def open_session(cfg: TestConfig, device: torch.device, video: VideoInput | None = None) -> Session:
    """The predictor of a test run and its record (``video``: the ``--video`` source, whose
    frame format and flow settings the record names).

    Cheap checks come first, then the weights file is read once (hashed and loaded from the
    same bytes), then, with ``--runtime onnxruntime`` and no ``--onnx``, the network is
    exported once into ``{output_dir}/{model_name}/onnx/`` and the file reused by later runs.
    """
    mode = precision(cfg, device)
    check_runtime(
        cfg.runtime,
        mode,
        device,
        channels_last=cfg.channels_last,
        compile=cfg.compile,
        calibrated=cfg.int8_calibration is not None,
    )
    loaded = read_test_model(cfg)
    weights = weights_id(loaded)
    calibration = int8_calibration(cfg, weights)
    model = build_model(cfg, device, loaded)
    del loaded  # the network holds the weights now; the file's dict can go
    onnx_path = cfg.onnx
    if cfg.runtime == "onnxruntime" and onnx_path is None:
        onnx_path = cached_onnx(model, cfg, weights)
    predictor = MTNetPredictor(
        model if cfg.runtime == "torch" else None,
        cfg.task_name,
        cfg.test_size,
        cfg.test_length,
        device=device,
        precision=mode,
        runtime=cfg.runtime,
        onnx_path=onnx_path,
        channels_last=cfg.channels_last,
        compile=cfg.compile,
        int8_calibration=calibration,
        flow=cfg.flow_settings(),
        memory_check=False,  # run() checked it before any work
    )
    if cfg.onnx is not None:
        check_onnx_weights(cfg.onnx, predictor.backend.metadata, weights)
    log.info("network: %s", describe_line(predictor.describe()))
    masks = MaskSettings(
        weights=weights,
        encoder_name=model.encoder_name,
        task=cfg.task_name,
        test_size=predictor.test_size,
        test_length=predictor.clip_length,
        precision=mode,
        runtime=cfg.runtime,
        channels_last=cfg.channels_last,
        compile=cfg.compile,
        int8_calibration=calibration.sha256 if calibration is not None else None,
        frames=video.frame_format if video is not None else None,
        flow=predictor.flow.record() if video is not None else None,
    )
    record = SessionRecord(masks, cfg.test_model, predictor.describe(), asdict(cfg))
    log.info("config %s", json.dumps(asdict(cfg)))
    return Session(predictor, record)


def precision(cfg: TestConfig, device: torch.device) -> str:
    """The forward pass's precision: ``--precision``, or ``--amp_dtype`` with ``--amp`` on
    CUDA (``--amp`` on the CPU runs in fp32, with a warning; beside another ``--precision``
    on CUDA, ``InputError``)."""
    if not cfg.amp:
        return cfg.precision
    if device.type != "cuda":
        log.warning("--amp works on CUDA only; running in %s on %s", cfg.precision, device)
        return cfg.precision
    if cfg.precision != "fp32":
        raise InputError(
            f"--amp with --precision {cfg.precision}: --amp means --precision {cfg.amp_dtype} "
            "on CUDA; give one or the other"
        )
    return cfg.amp_dtype


def read_test_model(cfg: TestConfig) -> LoadedFile | None:
    """The weights file ``--test_model``, read once: what it holds and the SHA-256 of the
    bytes loaded (``None`` for the untrained network); ``InputError`` for a missing file."""
    if cfg.test_model is None:
        return None
    if not Path(cfg.test_model).is_file():
        raise InputError(
            f"{cfg.test_model}: no such weights file (--test_model); {WEIGHTS_SOURCE}, or "
            "run --random_weights for a smoke run of the pipeline"
        )
    return load_hashed_file(cfg.test_model)


def weights_id(weights: LoadedFile | None) -> str:
    """What the weights are (the record's ``weights``): the file's SHA-256, or the untrained
    network's ``RANDOM_WEIGHTS``."""
    return weights.sha256 if weights is not None else RANDOM_WEIGHTS


def int8_calibration(cfg: TestConfig, weights: str) -> Calibration | None:
    """The ranges of ``--int8_calibration``, checked against the weights (``weights_id``;
    ``None`` without the flag)."""
    if cfg.int8_calibration is None:
        return None
    calibration = load_calibration(cfg.int8_calibration)
    if calibration.weights != weights:
        raise InputError(
            f"{calibration.path}: calibrated for weights {calibration.weights}, not "
            f"{weights}; calibrate again for these weights"
        )
    return calibration


def build_model(
    cfg: TestConfig, device: torch.device, weights: LoadedFile | None = None
) -> nn.Module:
    """MTNet with the weights of ``cfg.test_model`` (``weights``: that file already read by
    :func:`read_test_model`; else it is read here), in eval mode on ``device``.

    No ``test_model`` (``--random_weights``, or ``--video`` without weights): randomly
    initialised with ``RANDOM_SEED`` (the global RNG is left as it was), with a warning that
    the masks mean nothing.
    """
    if cfg.test_model is not None:
        weights = weights if weights is not None else read_test_model(cfg)
        return build_mtnet(cfg.encoder_name, weights=weights, device=device)
    log.warning(untrained_warning(cfg))  # the builder's own warning would say it twice
    return build_mtnet(cfg.encoder_name, device=device, seed=RANDOM_SEED, untrained_ok=True)


def untrained_warning(cfg: TestConfig) -> str:
    """The warning of a run without weights (names why: the flag, or the missing default
    file)."""
    why = "--random_weights" if cfg.random_weights else (
        f"no --test_model and no {config.DEFAULT_MODEL}"
    )  # fmt: skip
    return (
        f"{why}: the network is UNTRAINED (random weights, seed {RANDOM_SEED}), so the masks "
        f"are meaningless; this is only a smoke run of the pipeline. For real masks "
        f"{WEIGHTS_SOURCE}, or pass --test_model FILE"
    )


def check_onnx_weights(onnx_path: str | Path, metadata: dict[str, str], weights: str) -> None:
    """``--onnx``: the file runs the network, the record names the weights of
    ``--test_model`` (``weights_id``); ``InputError`` when the file says it was exported
    from other weights, a warning when it does not say."""
    exported = exported_weights(metadata)
    if exported is None:
        log.warning(
            "%s names no weights (not exported by this project?); the run's record names "
            "those of --test_model, unchecked",
            onnx_path,
        )
    elif exported != weights:
        raise InputError(
            f"{onnx_path}: exported from weights {exported}, not {weights} (--test_model); "
            "export these weights again with python -m inference.export_onnx, or give the "
            "--test_model it was exported from"
        )


def cached_onnx(model: nn.Module, cfg: TestConfig, weights: str) -> Path:
    """The network's ONNX export for the test size, made once per weights (``weights_id``)
    and size."""
    height, width = cfg.test_size
    tag = weights.split()[0][:16]
    path = cfg.layout().model_root / "onnx" / f"{model.encoder_name}_{tag}_{height}x{width}.onnx"
    check_no_links(cfg.output_dir, [path], "--output_dir")
    if not path.is_file():
        log.info("exporting the network to %s (once; later runs reuse it)", path)
        metadata = weights_metadata(cfg.test_model, weights, model.encoder_name)
        export_onnx(model.cpu(), path, cfg.test_size, metadata=metadata)
    return path
