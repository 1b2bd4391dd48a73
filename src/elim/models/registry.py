"""Backbone registry: names → factories of f_φ, plus their preprocessing defaults.

A factory has the signature ``factory(feature_dim, pretrained, **options) -> Backbone``; it is
registered with :func:`register_backbone`. A *family* (``timm:<model>``) is a name prefix whose
factory also receives the part after the prefix. :func:`backbone_options` resolves a factory's
options against its signature, so configs saved with a run list every option explicitly.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from torch import nn

from elim.errors import ElimError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

Factory = Callable[..., nn.Module]


@dataclass(frozen=True)
class BackboneSpec:
    """A registered backbone: its factory and the input it expects by default."""

    name: str
    factory: Factory
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    summary: str = ""


@dataclass(frozen=True)
class BackboneFamily:
    """Names ``<prefix><model>``; ``factory(model, feature_dim, pretrained, **options)`` and
    ``defaults(model) -> {"image_size", "mean", "std"}``."""

    prefix: str
    factory: Factory
    defaults: Callable[[str], dict[str, Any]]
    summary: str = ""


_REGISTRY: dict[str, BackboneSpec] = {}
_FAMILIES: dict[str, BackboneFamily] = {}


def register_backbone(
    name: str,
    *,
    image_size: int,
    mean: tuple[float, float, float] = IMAGENET_MEAN,
    std: tuple[float, float, float] = IMAGENET_STD,
    summary: str = "",
) -> Callable[[Factory], Factory]:
    """Decorator: register ``factory(feature_dim, pretrained, **options)`` under ``name``."""

    def deco(factory: Factory) -> Factory:
        if name in _REGISTRY:
            raise ValueError(f"backbone {name!r} is already registered")
        _REGISTRY[name] = BackboneSpec(name, factory, image_size, tuple(mean), tuple(std), summary)
        return factory

    return deco


def register_family(
    prefix: str, defaults: Callable[[str], dict[str, Any]], summary: str = ""
) -> Callable[[Factory], Factory]:
    """Decorator: register a factory for every name ``<prefix><model>``."""

    def deco(factory: Factory) -> Factory:
        _FAMILIES[prefix] = BackboneFamily(prefix, factory, defaults, summary)
        return factory

    return deco


def list_backbones() -> list[str]:
    """Registered backbone names (families such as ``timm:<model>`` are not expanded)."""
    return sorted(_REGISTRY)


def _choices() -> str:
    families = [f"{prefix}<model>" for prefix in sorted(_FAMILIES)]
    return ", ".join(list_backbones() + families)


def _resolve(name: str) -> tuple[Factory, tuple[Any, ...], Callable[[], dict[str, Any]]]:
    """Return (factory, leading positional args, defaults thunk) for ``name``."""
    spec = _REGISTRY.get(name)
    if spec is not None:
        defaults = {"image_size": spec.image_size, "mean": spec.mean, "std": spec.std}
        return spec.factory, (), lambda: dict(defaults)
    for prefix, family in _FAMILIES.items():
        if name.startswith(prefix) and len(name) > len(prefix):
            model = name[len(prefix) :]
            return family.factory, (model,), partial(family.defaults, model)
    raise ElimError(f"unknown backbone {name!r}; choose one of {_choices()}")


def backbone_defaults(name: str) -> dict[str, Any]:
    """Preprocessing defaults of ``name``: ``{"image_size": int, "mean": (3,), "std": (3,)}``."""
    return _resolve(name)[2]()


def backbone_options(name: str, **options: Any) -> dict[str, Any]:
    """Every option of backbone ``name`` (given ones over the factory's defaults), validated.

    ``feature_dim`` and ``pretrained`` are not included. Unknown options raise
    :class:`ElimError` naming the accepted ones.
    """
    factory, lead, _ = _resolve(name)
    sig = inspect.signature(factory)
    params = list(sig.parameters.values())[len(lead) :]
    named = [p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in params)
    known = {p.name for p in named} - {"feature_dim", "pretrained"}
    unknown = sorted(set(options) - known)
    if unknown and not accepts_any:
        raise ElimError(
            f"backbone {name!r} has no option {', '.join(map(repr, unknown))}; "
            f"its options are {', '.join(sorted(known)) or '(none)'}"
        )
    resolved = {p.name: p.default for p in named if p.name in known}
    resolved.update(options)
    return resolved


def create_backbone(
    name: str, feature_dim: int = 64, pretrained: bool = False, **options: Any
) -> nn.Module:
    """Build backbone f_φ ``name`` mapping (B, 3, S, S) images to (B, feature_dim) features.

    ``pretrained=True`` loads ImageNet weights where torchvision/timm provide them, from the
    local caches only (:mod:`elim.models.pretrained`: never downloaded; a missing file is an
    :class:`ElimError` naming it and where to place it). Options are backbone specific (see
    :func:`backbone_options`).
    """
    factory, lead, _ = _resolve(name)
    resolved = backbone_options(name, **options)
    return factory(*lead, feature_dim=int(feature_dim), pretrained=bool(pretrained), **resolved)
