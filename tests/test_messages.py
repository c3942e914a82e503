"""Messages that match the caller: flags in a script, parameters from Python; the hints of
util.flow, dataset.prepare and train.py."""

from __future__ import annotations

import pytest
import torch

from dataset.prepare import main as prepare_main
from dataset.prepare import prepare_davis2016, prepare_youtube_vos
from inference import MTNetPredictor
from inference.runtime import check_runtime
from inference.runtime.precision import check_precision
from model.variants import check_test_size
from tests.conftest import load_script
from util.errors import InputError, exit_status, setting
from util.flow import main as flow_main


def _cli_error(run) -> str:
    """The one line a script prints for ``run``'s ``InputError`` (util.errors.exit_status)."""
    error: list[str] = []

    def capture() -> None:
        try:
            run()
        except InputError as err:
            error.append(str(err))
            raise

    assert exit_status("prog", capture) == 2
    return error[0]


def _api_error(run) -> str:
    with pytest.raises(InputError) as err:
        run()
    return str(err.value)


def test_setting_names_flags_in_scripts_and_parameters_in_python():
    assert setting("precision", "fp16") == "precision='fp16'"
    assert setting("test_size", (65, 64)) == "test_size=(65, 64)"
    assert setting("compile", True) == "compile=True"
    assert setting("clip_length", 0, flag="--test_length") == "clip_length=0"
    inside: list[str] = []
    exit_status("prog", lambda: inside.extend([
        setting("precision", "fp16"),
        setting("test_size", (65, 64)),
        setting("compile", True),
        setting("clip_length", 0, flag="--test_length"),
        setting("channels_last"),
    ]))  # fmt: skip
    assert inside == ["--precision fp16", "--test_size 65 64", "--compile", "--test_length 0",
                      "--channels_last"]  # fmt: skip
    assert setting("precision", "fp16") == "precision='fp16'"  # the script's naming ended


def test_test_size_message_follows_the_caller():
    api = _api_error(lambda: check_test_size(65, 64))
    assert (
        api == "test_size=(65, 64): expected multiples of 64 (the paper uses test_size=(512, 512))"
    )
    cli = _cli_error(lambda: check_test_size(65, 64))
    assert cli == "--test_size 65 64: expected multiples of 64 (the paper uses --test_size 512 512)"


def test_precision_and_runtime_messages_follow_the_caller():
    cpu = torch.device("cpu")
    assert _api_error(lambda: check_precision("fp16", cpu)).startswith(
        "precision='fp16': runs on CUDA only"
    )
    assert _cli_error(lambda: check_precision("fp16", cpu)).startswith(
        "--precision fp16: runs on CUDA only"
    )
    runtime = lambda: check_runtime("onnxruntime", "fp32", "cpu", compile=True)  # noqa: E731
    assert _api_error(runtime) == "channels_last and compile are options of the torch runtime"
    assert _cli_error(runtime) == "--channels_last and --compile are options of the torch runtime"


def test_predictor_names_its_parameters():
    assert _api_error(lambda: MTNetPredictor(None, task="VOS")) == (
        "task='VOS': expected one of UVOS, VSOD"
    )
    assert _api_error(lambda: MTNetPredictor(None, clip_length=0)) == (
        "clip_length=0: expected a positive int"
    )
    assert _api_error(lambda: MTNetPredictor(None, test_size=(65, 64))).startswith(
        "test_size=(65, 64): expected multiples of 64"
    )
    assert _api_error(lambda: MTNetPredictor(None, precision="fp16")).startswith(
        "precision='fp16': runs on CUDA only"
    )
    # inside test.py the same check names the flag the user typed
    assert _cli_error(lambda: MTNetPredictor(None, clip_length=0)).startswith("--test_length 0:")


def test_test_py_names_its_flags(tmp_path, capsys):
    script = load_script("test.py")
    argv = ["--video", str(tmp_path / "v.mp4"), "--test_size", "65", "64"]
    assert script.main([*argv, "--output_dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "test.py: error: --test_size 65 64: expected multiples of 64 "
        "(the paper uses --test_size 512 512)"
    ]


def test_flow_given_a_video_file_points_to_test_py(tmp_path, capsys):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\0" * 16)
    assert flow_main(["--frames", str(clip), "--out", str(tmp_path / "flow")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert f"{clip}: a file, not a folder of frames" in err[0]
    assert f"python test.py --video {clip}" in err[0]
    assert not (tmp_path / "flow").exists()


@pytest.mark.parametrize("source", ["davis2016", "youtube-vos"])
def test_prepare_names_a_missing_src(tmp_path, capsys, source):
    missing = tmp_path / "no_such_download"
    assert prepare_main([source, "--src", str(missing), "--out", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"dataset.prepare: error: --src {missing}: does not exist; expected the "
                   "unpacked download"]  # fmt: skip
    assert not (tmp_path / "data").exists()


def test_prepare_from_python_names_its_parameter(tmp_path):
    missing = tmp_path / "nothing"
    for prepare in (prepare_davis2016, prepare_youtube_vos):
        assert _api_error(lambda p=prepare: p(missing, tmp_path / "data")).startswith(
            f"src='{missing}': does not exist"
        )


def test_train_without_data_points_to_dataset_prepare(tmp_path, capsys):
    import train as train_script

    argv = ["--stage", "pre_train", "--root", str(tmp_path / "absent"), "--device", "cpu"]
    assert train_script.main([*argv, "--exp", str(tmp_path / "exp")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("train.py: error: --train_dataset ")
    assert "no frame folder in the dataset root" in err[0] and str(tmp_path / "absent") in err[0]
    assert "python -m dataset.prepare" in err[0]


def test_device_and_video_path_follow_the_caller(tmp_path):
    from inference.video_input import VideoInput
    from util.distributed import resolve_device

    with pytest.raises(ValueError, match=r"^device='tpu': expected auto, cpu, cuda or cuda:N$"):
        resolve_device("tpu")
    missing = tmp_path / "missing.mp4"
    assert _api_error(lambda: VideoInput.resolve(missing, tmp_path)) == (
        f"path='{missing}': no such video file or folder of frames"
    )
    assert _cli_error(lambda: VideoInput.resolve(missing, tmp_path)) == (
        f"--video {missing}: no such video file or folder of frames"
    )
