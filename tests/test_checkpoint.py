"""Weights files: release format, key mapping, strict loading, safety, encoder init."""

from __future__ import annotations

import hashlib
import os
import pickle
import re
from pathlib import Path

import pytest
import torch

from model import MTNet, build_mtnet
from model.keys import model_to_release_key, release_to_model_key, torchvision_convnext_to_release
from model.weights import load_weights, release_state_dict, save_model_file
from tests.conftest import tiny_mtnet
from tests.test_model import read_key_list
from util.checkpoint import CheckpointError, load_file, load_hashed_file, strip_wrapper_prefixes


@pytest.fixture(scope="module")
def net() -> MTNet:
    torch.manual_seed(1)
    return MTNet()


def perturbed_copy(net: MTNet) -> MTNet:
    other = MTNet()
    with torch.no_grad():
        for p in other.parameters():
            p.add_(1.0)
    return other


def assert_same_state(a: MTNet, b: MTNet) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def test_key_mapping_round_trips_every_release_key() -> None:
    for key in read_key_list():
        assert model_to_release_key(release_to_model_key(key)) == key
    assert release_to_model_key("backbone.stages.2.8.pwconv1.weight") == (
        "backbone.body.stages_2.blocks.8.mlp.fc1.weight"
    )
    assert release_to_model_key("backbone.downsample_layers.0.1.bias") == (
        "backbone.body.stem_1.bias"
    )
    assert release_to_model_key("backbone.downsample_layers.3.1.weight") == (
        "backbone.body.stages_3.downsample.1.weight"
    )
    assert release_to_model_key("backbone.norm2.weight") == "backbone.norm2.weight"
    assert release_to_model_key("fpn.toplayer.weight") == "fpn.toplayer.weight"


def test_strip_wrapper_prefixes() -> None:
    t = torch.zeros(1)
    out = strip_wrapper_prefixes({"module.a.b": t, "_orig_mod.module.c": t, "d": t})
    assert list(out) == ["a.b", "c", "d"]


def test_model_file_has_release_format_and_round_trips(net: MTNet, tmp_path: Path) -> None:
    path = tmp_path / "sub" / "model.pth"
    save_model_file(path, net, it=123)
    obj = torch.load(path, weights_only=True)
    assert set(obj) == {"it", "network"} and obj["it"] == 123
    assert {k: tuple(v.shape) for k, v in obj["network"].items()} == {
        "module." + k: s for k, s in read_key_list().items()
    }
    assert [p.name for p in path.parent.iterdir()] == ["model.pth"]  # no temporary left
    other = perturbed_copy(net)
    assert load_weights(other, path) == 123
    assert_same_state(net, other)


@pytest.mark.parametrize("form", ["bare_release", "bare_ours", "resume", "ddp_ours"])
def test_loads_every_accepted_form(net: MTNet, tmp_path: Path, form: str) -> None:
    release = {k.removeprefix("module."): v for k, v in release_state_dict(net).items()}
    obj = {
        "bare_release": release,
        "bare_ours": net.state_dict(),
        "resume": {"it": 7, "network": release_state_dict(net), "optimizer": {"state": {}}},
        "ddp_ours": {"module." + k: v for k, v in net.state_dict().items()},
    }[form]
    torch.save(obj, tmp_path / "w.pth")
    other = perturbed_copy(net)
    assert load_weights(other, tmp_path / "w.pth") == (7 if form == "resume" else None)
    assert_same_state(net, other)


def test_mismatch_names_missing_unexpected_and_misshapen(net: MTNet, tmp_path: Path) -> None:
    state = release_state_dict(net)
    del state["module.cls5.3.bias"]
    state["module.extra.weight"] = torch.zeros(2)
    state["module.fpn.toplayer.bias"] = torch.zeros(5)
    save = tmp_path / "bad.pth"
    torch.save({"it": 1, "network": state}, save)
    with pytest.raises(CheckpointError) as err:
        load_weights(MTNet(), save)
    msg = str(err.value)
    assert str(save) in msg and "\n" not in msg
    assert "1 missing (first: cls5.3.bias)" in msg
    assert "1 unexpected (first: extra.weight)" in msg
    assert "fpn.toplayer.bias (5,) vs (96,)" in msg


def test_small_checkpoint_does_not_load_into_tiny(tmp_path: Path) -> None:
    save_model_file(tmp_path / "s.pth", MTNet(encoder="convnext-small"))
    with pytest.raises(CheckpointError, match="unexpected.*backbone.stages.2.9"):
        load_weights(MTNet(), tmp_path / "s.pth")


def test_missing_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no such weights file"):
        load_weights(tiny_mtnet(), tmp_path / "absent.pth")
    (tmp_path / "text.pth").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="not a loadable weights file"):
        load_weights(tiny_mtnet(), tmp_path / "text.pth")
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match="expected a dict"):
        load_weights(tiny_mtnet(), tmp_path / "list.pth")
    torch.save({"it": 3}, tmp_path / "empty.pth")
    with pytest.raises(CheckpointError, match="no state dict"):
        load_weights(tiny_mtnet(), tmp_path / "empty.pth")


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"network": {"x": torch.zeros(1)}, "payload": _Exploit(marker)}, path)
    with pytest.raises(CheckpointError, match="not a loadable weights file"):
        load_weights(tiny_mtnet(), path)
    assert not marker.exists()
    with path.open("wb") as fh:  # a plain pickle (not a torch zip file) too
        pickle.dump(_Exploit(marker), fh)
    with pytest.raises(CheckpointError):
        load_weights(tiny_mtnet(), path)
    assert not marker.exists()


def _body_state(net: MTNet) -> dict[str, torch.Tensor]:
    return {k: v for k, v in net.backbone.state_dict().items() if k.startswith("body.")}


def test_encoder_weights_original_convnext_release(net: MTNet, tmp_path: Path) -> None:
    backbone = {
        k.removeprefix("module.backbone."): v
        for k, v in release_state_dict(net).items()
        if k.startswith("module.backbone.") and not re.match(r"module\.backbone\.norm\d", k)
    }
    backbone["norm.weight"] = torch.ones(768)  # the classifier's final norm and head: ignored
    backbone["head.weight"] = torch.zeros(1000, 768)
    torch.save({"model": backbone}, tmp_path / "convnext_tiny_1k_224_ema.pth")
    fresh = build_mtnet(
        device="cpu", encoder_weights=str(tmp_path / "convnext_tiny_1k_224_ema.pth")
    )
    for k, v in _body_state(net).items():
        assert torch.equal(fresh.backbone.state_dict()[k], v), k
    assert torch.equal(fresh.backbone.norm0.weight, torch.ones(96))  # keeps its init


def _tv_model() -> torch.nn.Module:
    from torchvision.models import convnext_tiny

    torch.manual_seed(2)
    tv = convnext_tiny(weights=None)
    with torch.no_grad():
        for p in tv.parameters():
            p.normal_(std=0.05)
    return tv


def _tv_state() -> dict[str, torch.Tensor]:
    return _tv_model().state_dict()


def test_encoder_weights_torchvision(tmp_path: Path) -> None:
    tv = _tv_model()
    torch.save(tv.state_dict(), tmp_path / "tv.pth")
    release = torchvision_convnext_to_release(tv.state_dict())
    assert release["stages.2.8.gamma"].shape == (384,)
    assert torch.equal(release["stages.1.0.dwconv.weight"], tv.features[3][0].block[0].weight)
    fresh = build_mtnet(device="cpu", encoder_weights=str(tmp_path / "tv.pth"))
    body = fresh.backbone.body
    assert torch.equal(body.stem_0.weight, tv.features[0][0].weight)
    assert torch.equal(body.stages_3.downsample[1].weight, tv.features[6][1].weight)
    assert torch.equal(body.stages_2.blocks[4].gamma, tv.features[5][4].layer_scale.flatten())
    assert torch.equal(body.stages_0.blocks[2].mlp.fc2.bias, tv.features[1][2].block[5].bias)
    # and the encoder computes what torchvision's features compute
    x = torch.randn(1, 3, 64, 64)
    fresh.eval(), tv.eval()
    with torch.no_grad():
        ours = fresh.backbone.body(x)[-1]
        theirs = tv.features(x)
    torch.testing.assert_close(ours, theirs, atol=1e-3, rtol=1e-4)


def test_encoder_weights_foreign_file_is_an_error(tmp_path: Path) -> None:
    from torchvision.models import resnet18

    torch.save(resnet18(weights=None).state_dict(), tmp_path / "resnet.pth")
    with pytest.raises(CheckpointError, match="no ConvNeXt encoder weights"):
        build_mtnet(device="cpu", encoder_weights=str(tmp_path / "resnet.pth"))
    partial = {k: v for k, v in torchvision_convnext_to_release(_tv_state()).items()}
    del partial["stages.3.2.gamma"]
    torch.save({"model": partial}, tmp_path / "partial.pth")
    with pytest.raises(CheckpointError, match="1 missing \\(first: backbone.stages.3.2.gamma\\)"):
        build_mtnet(device="cpu", encoder_weights=str(tmp_path / "partial.pth"))
    with pytest.raises(CheckpointError, match="no such weights file"):
        build_mtnet(device="cpu", encoder_weights=str(tmp_path / "absent.pth"))


def test_non_finite_weights_are_refused_naming_the_first_tensor(net: MTNet, tmp_path: Path):
    state = release_state_dict(net)
    key, last = "module.backbone.stages.1.0.dwconv.weight", list(state)[-1]
    state[key] = state[key].clone()
    state[key].view(-1)[5] = float("nan")  # one value is enough
    state[last] = torch.full_like(state[last], float("inf"))  # a later one is not named
    torch.save({"it": 7, "network": state}, tmp_path / "nan.pth")
    with pytest.raises(CheckpointError) as caught:
        load_weights(MTNet(), tmp_path / "nan.pth")
    msg = str(caught.value)
    assert "\n" not in msg and "nan.pth" in msg and "backbone.stages.1.0.dwconv.weight" in msg
    # the encoder's ImageNet file too (release ConvNeXt names, one infinite value)
    body = {k.removeprefix("module.backbone."): v for k, v in release_state_dict(net).items()}
    body = {k: v.clone() for k, v in body.items() if k.startswith(("stages.", "downsample_"))}
    body["stages.3.2.gamma"][0] = float("-inf")
    torch.save({"model": body}, tmp_path / "enc.pth")
    with pytest.raises(CheckpointError, match=r"enc\.pth: tensor backbone\.stages\.3\.2\.gamma"):
        build_mtnet(device="cpu", encoder_weights=str(tmp_path / "enc.pth"))


def test_non_finite_weights_are_never_written(tmp_path: Path) -> None:
    model = tiny_mtnet()
    with torch.no_grad():
        next(model.parameters()).view(-1)[0] = float("nan")
    with pytest.raises(CheckpointError, match="NaN or infinite"):
        save_model_file(tmp_path / "best.pth", model)
    assert list(tmp_path.iterdir()) == []


def test_random_bytes_message_never_suggests_the_unsafe_loader(tmp_path: Path) -> None:
    files = {
        "random.pth": os.urandom(4096).replace(b"PK", b"pk").lstrip(b"\x80") or b"x",
        "cut.pth": b"",  # filled below: a real model file cut in half
    }
    torch.save({"network": {"x": torch.zeros(1000)}}, tmp_path / "whole.pth")
    whole = (tmp_path / "whole.pth").read_bytes()
    files["cut.pth"] = whole[: len(whole) // 2]
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(CheckpointError) as caught:
            load_weights(tiny_mtnet(), tmp_path / name)
        msg = str(caught.value)
        assert msg.startswith(f"{tmp_path / name}: not a loadable weights file")
        assert "\n" not in msg and "weights_only" not in msg and "trusted" not in msg, msg
        assert "expected a file of torch.save" in msg


def test_a_file_read_once_loads_as_by_path_and_hashes_the_bytes_loaded(tmp_path: Path) -> None:
    source = tiny_mtnet(5)
    path = tmp_path / "w.pth"
    save_model_file(path, source)
    loaded = load_hashed_file(path)
    assert loaded.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    path.write_bytes(b"replaced after the read")  # what was read is what loads
    net = build_mtnet(None, weights=loaded, device="cpu")  # the variant read off the contents
    assert all(
        torch.equal(a, b)
        for a, b in zip(net.state_dict().values(), source.state_dict().values(), strict=True)
    )


def test_a_file_read_once_is_refused_as_by_path(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    torch.save({"payload": _Exploit(marker)}, tmp_path / "evil.pth")
    (tmp_path / "text.pth").write_text("not a checkpoint")
    torch.save([1, 2, 3], tmp_path / "list.pth")
    for name in ("absent.pth", "text.pth", "list.pth", "evil.pth"):
        with pytest.raises(CheckpointError) as by_path:
            load_file(tmp_path / name)
        with pytest.raises(CheckpointError) as read_once:
            load_hashed_file(tmp_path / name)
        assert str(read_once.value) == str(by_path.value)
    assert not marker.exists()
