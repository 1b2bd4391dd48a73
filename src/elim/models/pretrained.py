"""ImageNet weights for ``pretrained=True`` (``--pretrained``), from the local caches only.

Nothing is ever downloaded: a run must not open network connections behind its user's back
(and training machines often have none). The weights are looked up where torchvision and timm
keep the files they download, so a file fetched once on another machine and copied over works:

- torchvision backbones (``alexnet-light``, ``resnet18``): ``<torch hub>/checkpoints/<file>``,
  the file name being the last part of the weights' URL; ``<torch hub>`` is
  ``torch.hub.get_dir()`` (``$TORCH_HOME/hub``, default ``~/.cache/torch/hub``);
- timm backbones (``mixer``, ``timm:<model>``): the model's Hugging Face repository in the hub
  cache (``huggingface_hub.constants.HF_HUB_CACHE``: ``$HF_HUB_CACHE``, else
  ``$HF_HOME/hub``, default ``~/.cache/huggingface/hub``; ``model.safetensors`` or
  ``pytorch_model.bin``), else the file of the model's URL in ``<torch hub>/checkpoints``.

A missing file is an :class:`ElimError` that names the file and the folder to place it in; a
file that cannot be loaded (damaged, another model's) is one that names the file. Files are
read with ``torch.load(weights_only=True)`` or safetensors: never unpickled as code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import nn

from elim.errors import ElimError

__all__ = ["create_timm_model", "hub_checkpoints", "load_torchvision_weights", "timm_weights_file"]

#: File names timm looks for in a Hugging Face repository, in its order of preference.
HF_FILES = ("model.safetensors", "pytorch_model.bin")


def hub_checkpoints() -> Path:
    """The folder where torch hub keeps downloaded weights (``torch.hub.get_dir()/checkpoints``,
    which follows ``$TORCH_HOME``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def _url_file(url: str) -> str:
    return Path(urlparse(url).path).name


def _missing(name: str, places: list[str]) -> ElimError:
    return ElimError(
        f"backbone {name!r}: --pretrained uses ImageNet weights already on this machine and "
        f"never downloads them; place {' or '.join(places)} (fetch it on a machine with "
        "internet), or drop --pretrained"
    )


def _unloadable(name: str, file: Path, err: Exception) -> ElimError:
    return ElimError(
        f"backbone {name!r}: cannot load the pretrained weights {file} ({err}); replace the "
        "file with the right one, or drop --pretrained"
    )


def load_torchvision_weights(name: str, weights: Any, module: nn.Module, prefix: str = "") -> None:
    """Load the cached torchvision ``weights`` into ``module``, offline.

    Parameters
    ----------
    name
        The backbone's registry name (for messages).
    weights
        A torchvision ``WeightsEnum`` member (e.g. ``ResNet18_Weights.IMAGENET1K_V1``); its
        URL names the file looked up in :func:`hub_checkpoints`.
    module
        Receives the weights (``load_state_dict``, strict).
    prefix
        Only the entries under this prefix are loaded, with it removed (``"features."``: the
        convolutional stack of AlexNet).

    Returns
    -------
    None
        An :class:`ElimError` names the file to place when it is missing, or the file when it
        does not load.
    """
    file = hub_checkpoints() / _url_file(weights.url)
    if not file.is_file():
        raise _missing(name, [f"{file.name} in {file.parent} (from {weights.url})"])
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
        if prefix:
            state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        module.load_state_dict(state)
    except Exception as err:  # torch.load and load_state_dict raise many types
        raise _unloadable(name, file, err) from err


def timm_weights_file(name: str, cfg: Any) -> Path:
    """The cached file of timm's pretrained weights described by ``cfg``, offline.

    Parameters
    ----------
    name
        The backbone's registry name (for messages).
    cfg
        The model's ``timm.get_pretrained_cfg(model)`` (``hf_hub_id``, ``hf_hub_filename``,
        ``url``).

    Returns
    -------
    Path
        The file, to pass to timm as ``pretrained_cfg_overlay={"file": ...}``. An
        :class:`ElimError` names where to place it when it is in neither cache.
    """
    places = []
    hub_id = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
    if hub_id:
        try:
            from huggingface_hub import constants, try_to_load_from_cache
        except ImportError:
            pass
        else:
            repo, _, revision = hub_id.partition("@")
            files = [cfg.hf_hub_filename] if getattr(cfg, "hf_hub_filename", None) else HF_FILES
            for file in files:
                found = try_to_load_from_cache(repo, file, revision=revision or None)
                if isinstance(found, str):
                    return Path(found)
            places.append(f"{files[0]} of the Hugging Face repository {repo} in the hub cache "
                          f"{constants.HF_HUB_CACHE} (huggingface-cli download {repo} {files[0]})")
    url = getattr(cfg, "url", None) if cfg is not None else None
    if url:
        file = hub_checkpoints() / _url_file(url)
        if file.is_file():
            return file
        places.append(f"{file.name} in {file.parent} (from {url})")
    if not places:
        raise ElimError(f"backbone {name!r}: timm has no pretrained weights for it; drop "
                        "--pretrained")
    raise _missing(name, places)


def create_timm_model(name: str, model: str, cfg: Any, **options: Any) -> nn.Module:
    """``timm.create_model(model, pretrained=True, **options)`` from the cached file only.

    Parameters
    ----------
    name
        The backbone's registry name (for messages).
    model
        The timm model name.
    cfg
        Its ``timm.get_pretrained_cfg(model)``.
    **options
        Passed to ``timm.create_model`` (``num_classes=0`` …).

    Returns
    -------
    nn.Module
        The model with the weights of :func:`timm_weights_file` (TypeError for an option timm
        rejects; ElimError naming the file when it does not load).
    """
    import timm

    file = timm_weights_file(name, cfg)
    try:
        return timm.create_model(model, pretrained=True, pretrained_cfg_overlay={"file": str(file)},
                                 **options)
    except TypeError:
        raise
    except Exception as err:  # timm / torch / safetensors raise many types
        raise _unloadable(name, file, err) from err
