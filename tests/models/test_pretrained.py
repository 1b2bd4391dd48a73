"""``pretrained=True`` is offline-only: weights come from the local torch hub / Hugging Face
caches, a missing file is a clear error naming it, and no download is ever attempted."""

from __future__ import annotations

import socket
import urllib.request

import pytest
import torch

from elim.errors import ElimError
from elim.models import create_backbone

HF_REVISION = "0" * 40


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """Empty caches under tmp_path; every download function fails the test if called (also
    when the code under test swallows the exception it raises)."""
    attempts: list[tuple] = []

    def _network_used(*args, **kwargs):
        attempts.append(args[:2])
        raise AssertionError(f"a download / network connection was attempted: {args[:2]}")

    import huggingface_hub
    import huggingface_hub.constants
    import timm.models._builder
    import timm.models._hub
    import torch.hub

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    for module, names in (
        (torch.hub, ("load_state_dict_from_url", "download_url_to_file")),
        (huggingface_hub, ("hf_hub_download", "snapshot_download")),
        (timm.models._hub, ("hf_hub_download", "download_cached_file", "load_state_dict_from_hf")),
        (timm.models._builder, ("load_state_dict_from_url", "download_cached_file",
                                "load_state_dict_from_hf")),
        (urllib.request, ("urlopen",)),
        (socket, ("create_connection", "getaddrinfo")),
    ):
        for name in names:
            if hasattr(module, name):
                monkeypatch.setattr(module, name, _network_used)
    monkeypatch.setattr(socket.socket, "connect", _network_used)
    yield tmp_path
    assert attempts == [], "a download / network connection was attempted"


@pytest.mark.parametrize("name, file", [("alexnet-light", "alexnet-owt-7be5be79.pth"),
                                        ("resnet18", "resnet18-f37072fd.pth")])
def test_missing_torchvision_weights_name_the_file_and_the_folder(offline, name, file):
    folder = offline / "torch" / "hub" / "checkpoints"
    with pytest.raises(ElimError) as err:
        create_backbone(name, pretrained=True)
    msg = str(err.value)
    assert f"{file} in {folder}" in msg and "never downloads" in msg
    assert "drop --pretrained" in msg


def test_missing_timm_weights_name_both_caches(offline):
    with pytest.raises(ElimError) as err:
        create_backbone("timm:resnet10t", pretrained=True)
    msg = str(err.value)
    assert "'timm:resnet10t'" in msg and "never downloads" in msg
    assert (f"model.safetensors of the Hugging Face repository timm/resnet10t.c3_in1k in the "
            f"hub cache {offline / 'hf'}") in msg
    assert f"resnet10t_176_c3-f3215ab1.pth in {offline / 'torch' / 'hub' / 'checkpoints'}" in msg


def _checkpoints(root):
    folder = root / "torch" / "hub" / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_cached_torchvision_weights_load_without_network(offline):
    from torchvision.models import alexnet, resnet18

    torch.manual_seed(0)
    reference = resnet18()
    torch.save(reference.state_dict(), _checkpoints(offline) / "resnet18-f37072fd.pth")
    net = create_backbone("resnet18", pretrained=True)
    torch.testing.assert_close(net.trunk.conv1.weight, reference.conv1.weight)
    torch.testing.assert_close(net.trunk.layer4[1].bn2.running_var, reference.layer4[1].bn2.running_var)

    features = alexnet().features  # the file's classifier entries are not needed
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()},
               _checkpoints(offline) / "alexnet-owt-7be5be79.pth")
    light = create_backbone("alexnet-light", pretrained=True)
    torch.testing.assert_close(light.trunk[0][0].weight, features[0].weight)


def test_a_damaged_cached_file_is_a_clear_error(offline):
    file = _checkpoints(offline) / "resnet18-f37072fd.pth"
    file.write_bytes(b"not a checkpoint")
    with pytest.raises(ElimError, match=f"cannot load the pretrained weights {file}"):
        create_backbone("resnet18", pretrained=True)


def _timm_reference():
    import timm

    torch.manual_seed(0)
    return timm.create_model("resnet10t", pretrained=False)  # with its ImageNet classifier


def test_cached_timm_weights_load_from_the_hugging_face_cache(offline):
    from safetensors.torch import save_file

    reference = _timm_reference()
    repo = offline / "hf" / "models--timm--resnet10t.c3_in1k"
    snapshot = repo / "snapshots" / HF_REVISION
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(HF_REVISION)
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()},
              str(snapshot / "model.safetensors"))
    net = create_backbone("timm:resnet10t", pretrained=True)
    torch.testing.assert_close(net.trunk.conv1[0].weight, reference.conv1[0].weight)


def test_cached_timm_weights_load_from_the_torch_hub_folder(offline):
    reference = _timm_reference()
    torch.save(reference.state_dict(), _checkpoints(offline) / "resnet10t_176_c3-f3215ab1.pth")
    net = create_backbone("timm:resnet10t", pretrained=True)
    torch.testing.assert_close(net.trunk.conv1[0].weight, reference.conv1[0].weight)
