"""Training configuration: typed sections, YAML/JSON presets and command-line overrides.

A configuration is a :class:`Config` with six parts, mirrored one-to-one by the YAML files in
``configs/paper/``, the built-in :data:`PRESETS` and the ``config.json`` of a run directory:

``model``     backbone f_φ and feature size d (what :func:`elim.models.build_model` takes);
``data``      dataset, image size, split rule and the identity batch sampler (P × K);
``augment``   train-time augmentation of the faces (geometric and photometric);
``matching``  the identity-matching layer (Sec. 4.1 and 4.3: ε, N, k, weights, sampling, solver);
``train``     method (``elim`` or ``baseline``), optimiser, learning-rate schedule, L_main warm-up,
              engine switches (accelerator, precision, wall-clock cap);
``seed``      one integer that seeds everything (Lightning, sampler, augmentation, matching).

Every preset key must name a field: an unknown key is an error that names the file and the key,
so a typo never silently falls back to a default. Command-line flags override the file.

Settings are declared once. Each choice is a ``typing.Literal`` next to its owner (``Solver`` and
``Grad`` in :mod:`elim.ot`, ``Weights`` and ``Sampling`` in :mod:`elim.matching`, the engine's
``Method``, ``LrSchedule``, ``Precision``, ``Accelerator``, ``Strategy`` and ``SplitMode``
here; ``head_output`` from :data:`elim.models.HEAD_OUTPUTS`), used by the field's type, by
:meth:`Config.validate` and by the command line's ``choices``. Each numeric field states its
allowed range next to its default (an :class:`elim.ot.checks.Bounds` in the field's metadata);
the ``matching`` section is checked by :class:`elim.matching.IdentityMatching` itself, whose
defaults it imports, and :meth:`MatchingConfig.build` is the one way from a config to the layer.
A violation is a :class:`ConfigError` naming the source, the key and the allowed range, e.g.
``command line: train.lr must be a finite number > 0, got -1.0``.

Backbone options. ``model.options`` are the options of ``model.backbone``. When a file or the
command line changes the backbone without giving ``model.options``, the options of the previous
backbone that the new one does not have are dropped (e.g. cnn-small's ``channels`` from the
presets under ``--backbone resnet18``); shared ones such as ``feature_activation`` are kept.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args, get_origin, get_type_hints

from elim.errors import ElimError
from elim.matching import (
    DEFAULT_COS_EPS,
    DEFAULT_EPS,
    DEFAULT_GRAD,
    DEFAULT_K,
    DEFAULT_MASS_FLOOR,
    DEFAULT_MAX_ITER,
    DEFAULT_N_IDENTITIES,
    DEFAULT_NORM_EPS,
    DEFAULT_SAMPLING,
    DEFAULT_SHIFT,
    DEFAULT_SOLVER,
    DEFAULT_TOL,
    DEFAULT_WEIGHTS,
    Sampling,
    Shift,
    Weights,
)
from elim.models import HEAD_OUTPUTS
from elim.ot import Grad, ParameterError, Solver
from elim.ot.checks import Bounds, check_choice

if TYPE_CHECKING:
    from elim.matching import IdentityMatching
    from elim.models import Preprocess

__all__ = [
    "DEFAULT_MARGIN",
    "IMAGE_SIZE_MAX",
    "IMAGE_SIZE_MIN",
    "METHOD_VARIANTS",
    "PRESETS",
    "Accelerator",
    "AugmentConfig",
    "Config",
    "ConfigError",
    "DataConfig",
    "LrSchedule",
    "MatchingConfig",
    "Method",
    "MethodVariant",
    "ModelConfig",
    "Precision",
    "SplitMode",
    "Strategy",
    "TrainConfig",
    "apply_overrides",
    "config_from_dict",
    "config_from_run",
    "load_config_file",
    "preprocess_for",
    "preset_config",
]

#: Training method: ELIM (L_va + L_main through the identity matching) or the baseline (L_va).
Method = Literal["elim", "baseline"]


@dataclass(frozen=True)
class MethodVariant:
    """A named training variant of the studies (Fig. 6): its label and configuration overrides."""

    label: str
    overrides: dict[str, Any]


#: The variants compared by ``elim study identities`` (name → label, overrides).
METHOD_VARIANTS: dict[str, MethodVariant] = {
    "elim": MethodVariant("ELIM", {"train.method": "elim"}),
    "elim-no-va": MethodVariant("ELIM w/o L_va", {"train.method": "elim", "train.w_mse": 0.0}),
    "elim-main-only": MethodVariant("L_main only", {"train.method": "elim", "train.w_mse": 0.0,
                                                    "train.w_pcc": 0.0, "train.w_ccc": 0.0}),
    "baseline": MethodVariant("baseline", {"train.method": "baseline"}),
}
#: Learning-rate schedule: the paper's step decay or cosine annealing to 0.
LrSchedule = Literal["step", "cosine"]
#: Lightning precision.
Precision = Literal["32", "bf16-mixed", "16-mixed", "64"]
#: Lightning accelerator.
Accelerator = Literal["cpu", "gpu", "cuda", "mps", "auto"]
#: Lightning strategy: one process, or one process per device (DDP).
Strategy = Literal["auto", "ddp"]
#: Split rule (elim.training.data.make_splits): the dataset's ``split`` column when present
#: (auto), that column only (official), or an identity-disjoint random split (random).
SplitMode = Literal["auto", "official", "random"]

#: Crop margin of training faces: the square around a face box has side max(w, h)·(1 + margin).
#: The one default of ``data.margin``, for every cache built from a config.
DEFAULT_MARGIN = 0.25
#: Allowed face sizes in pixels (every registered backbone accepts sizes in this range; mixer
#: takes 224 only, alexnet-light at least 64, and the model says so at its first batch).
IMAGE_SIZE_MIN, IMAGE_SIZE_MAX = 8, 1024


class ConfigError(ElimError):
    """A configuration file or value is invalid; the message names the file/key and the fix."""


def _limits(length: int | None = None, **bounds: Any) -> dict[str, Any]:
    """Field metadata: the allowed range (:class:`Bounds` keywords); ``length`` fixes the length
    of a list field, whose items the bounds then apply to."""
    return {"bounds": Bounds(**bounds), "length": length}


def _setting(default: Any, **bounds: Any) -> Any:
    """A dataclass field with its default and its allowed range (:class:`Bounds` keywords)."""
    return field(default=default, metadata=_limits(**bounds))


@dataclass
class ModelConfig:
    """The network: backbone f_φ (registry name) with feature size d, and the affine head f_θ."""

    backbone: str = "cnn-small"
    feature_dim: int = _setting(64, ge=1, integer=True)
    pretrained: bool = False
    head_output: str = field(default="linear", metadata={"choices": HEAD_OUTPUTS})
    options: dict[str, Any] = field(default_factory=dict)  # backbone options (dropout, ...)

    def to_model_dict(self) -> dict[str, Any]:
        """The flat mapping :func:`elim.models.build_model` takes (options resolved)."""
        from elim.models import model_config

        return model_config(
            self.backbone, self.feature_dim, self.pretrained, self.head_output, **self.options
        )


@dataclass
class DataConfig:
    """Where the faces come from, how they are split and how training batches are drawn.

    ``image_size``/``mean``/``std`` default to the backbone's own (``backbone_defaults``);
    ``image_size`` must lie in [IMAGE_SIZE_MIN, IMAGE_SIZE_MAX] = [8, 1024]. ``margin``: crop
    margin (:data:`DEFAULT_MARGIN`). Splits: the dataset's ``split`` column when present
    (``split_mode="auto"``), else an identity-disjoint ``group_split`` with ``fractions``
    (train, val, test) seeded by ``split_seed``. Batches: ``batch_identities`` P identities ×
    ``samples_per_identity`` K. ``align``: five-point similarity alignment of every face,
    in training and in predict (:mod:`elim.data.face_contract`).
    """

    dataset: str = "synthetic"
    root: str | None = None
    image_size: int | None = _setting(
        None, ge=IMAGE_SIZE_MIN, le=IMAGE_SIZE_MAX, integer=True, optional=True
    )
    mean: list[float] | None = field(default=None, metadata=_limits(3, optional=True))
    std: list[float] | None = field(default=None, metadata=_limits(3, gt=0, optional=True))
    margin: float = _setting(DEFAULT_MARGIN, ge=0)
    cache_dir: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    split_mode: SplitMode = "auto"
    fractions: list[float] = field(default_factory=lambda: [0.7, 0.15, 0.15])
    split_seed: int = _setting(0, ge=0, integer=True)
    batch_identities: int = _setting(10, ge=1, integer=True)
    samples_per_identity: int = _setting(10, ge=1, integer=True)
    eval_batch_size: int = _setting(256, ge=1, integer=True)
    num_workers: int = _setting(0, ge=0, integer=True)
    # the face contract (elim.data.face_contract): warp every face onto the five-point
    # template measured on the training crops, in the cache and in predict
    align: bool = False


@dataclass
class AugmentConfig:
    """Train-time augmentation of the faces (:class:`elim.data.transforms.FaceAugment`).

    Geometric, one batched affine warp per batch: a random square crop keeping a fraction
    ``scale`` ∈ U(scale) of the face's area at a random position (the paper's 224 of 256 px
    random crop keeps 0.77), a rotation of ±``rotate`` degrees, an extra shift of ±``translate``
    of the side, a horizontal ``flip`` with probability 1/2. Photometric, on [0, 1] pixels: a
    brightness offset ±``brightness``, a contrast factor 1 ± ``contrast`` about each face's mean,
    a gamma exp(±``gamma``); a 3×3 Gaussian blur, a conversion to grey and a JPEG
    re-compression (quality 40–95) each with its probability ``blur``, ``grey``, ``jpeg``.
    Defaults are the paper's (random crop + flip); the presets add the rest. ``enabled: false``
    trains on the faces as cached.
    """

    enabled: bool = True
    scale: list[float] = field(default_factory=lambda: [0.77, 1.0],
                               metadata=_limits(2, gt=0, le=1))
    rotate: float = _setting(0.0, ge=0, le=45)
    translate: float = _setting(0.0, ge=0, le=0.5)
    flip: bool = True
    brightness: float = _setting(0.0, ge=0, le=1)
    contrast: float = _setting(0.0, ge=0, le=1)
    gamma: float = _setting(0.0, ge=0, le=2)
    blur: float = _setting(0.0, ge=0, le=1)
    grey: float = _setting(0.0, ge=0, le=1)
    jpeg: float = _setting(0.0, ge=0, le=1)


@dataclass
class MatchingConfig:
    """The identity-matching layer (Eqs. 2, 3, 4, 7, 8) used by ``method=elim`` only.

    The fields, their defaults and their allowed ranges are those of
    :class:`elim.matching.IdentityMatching` (see it): ``eps``, ``max_iter`` and ``tol`` are
    Sinkhorn's options, used with ``solver="sinkhorn"`` only; with ``exact`` or ``qp`` they
    must keep their defaults (an error otherwise, never silently ignored).
    """

    n_identities: int = DEFAULT_N_IDENTITIES
    k: int = DEFAULT_K
    eps: float = DEFAULT_EPS
    max_iter: int = DEFAULT_MAX_ITER
    tol: float = DEFAULT_TOL
    weights: Weights = DEFAULT_WEIGHTS
    sampling: Sampling = DEFAULT_SAMPLING
    solver: Solver = DEFAULT_SOLVER
    grad: Grad = DEFAULT_GRAD
    norm_eps: float = DEFAULT_NORM_EPS
    mass_floor: float = DEFAULT_MASS_FLOOR
    cos_eps: float = DEFAULT_COS_EPS
    shift: Shift = DEFAULT_SHIFT  # "vector": the barycentric δ^e extension (off by default)

    def build(self) -> IdentityMatching:
        """The :class:`elim.matching.IdentityMatching` layer of these settings (every field)."""
        from elim.matching import IdentityMatching

        return IdentityMatching(**dataclasses.asdict(self))


@dataclass
class TrainConfig:
    """Optimisation and engine settings.

    Loss: ``L_va + w(t)·main_weight·L_main`` (one backward per step). ``w(t)`` ramps linearly from
    ``warmup_start`` to 1 over the first ``warmup`` fraction of all training steps.
    Learning rate: Adam with ``lr`` for f_φ and ``lr_head`` for f_θ; ``lr_schedule="step"`` (the
    paper's) multiplies it by ``lr_decay`` once at step ``lr_decay_first`` and again every
    ``lr_decay_every`` steps (``lr_decay_first = 0`` disables), ``"cosine"`` anneals it to 0 over
    all training steps. ``grad_clip``: gradient-norm clip (None: no clipping). ``threads`` sets
    torch's CPU threads (``None`` or 0: torch's default; on a shared, oversubscribed CPU one
    thread per process is often fastest).
    Scaling and faults (docs/scaling.md): ``strategy="ddp"`` with ``devices`` > 1 runs one
    process per device, each drawing its own identities; ``checkpoint_every`` writes the resume
    checkpoint every that many steps (0: at epoch ends only); a step with a non-finite loss or
    gradient is skipped, and ``max_bad_steps`` such steps in a row stop training (0: never).
    """

    method: Method = "elim"
    epochs: int = _setting(30, ge=1, integer=True)
    max_steps: int | None = _setting(None, ge=1, integer=True, optional=True)
    lr: float = _setting(5e-5, gt=0)
    lr_head: float = _setting(1e-5, gt=0)
    betas: list[float] = field(
        default_factory=lambda: [0.9, 0.999], metadata=_limits(2, ge=0, lt=1)
    )
    weight_decay: float = _setting(0.0, ge=0)
    lr_schedule: LrSchedule = "step"
    lr_decay: float = _setting(0.8, gt=0, le=1)
    lr_decay_first: int = _setting(5000, ge=0, integer=True)
    lr_decay_every: int = _setting(20000, ge=0, integer=True)
    warmup: float = _setting(0.1, ge=0, le=1)  # a fraction of all steps
    warmup_start: float = _setting(0.0, ge=0, le=1)
    main_weight: float = _setting(1.0, ge=0)
    w_mse: float = _setting(1.0, ge=0)
    w_pcc: float = _setting(1.0, ge=0)
    w_ccc: float = _setting(1.0, ge=0)
    grad_clip: float | None = _setting(None, gt=0, optional=True)
    accelerator: Accelerator = "auto"
    devices: int | str = 1  # a number >= 1 or "auto"
    num_nodes: int = _setting(1, ge=1, integer=True)  # machines; processes = num_nodes × devices
    strategy: Strategy = "auto"
    checkpoint_every: int = _setting(500, ge=0, integer=True)  # steps (0: epoch ends only)
    max_bad_steps: int = _setting(20, ge=0, integer=True)  # consecutive non-finite steps (0: never)
    precision: Precision = "32"
    max_minutes: float | None = _setting(None, gt=0, optional=True)
    val_every: int = _setting(1, ge=1, integer=True)
    progress: bool = True
    threads: int | None = _setting(None, ge=0, integer=True, optional=True)
    channels_last: bool = True  # NHWC memory format for convolutions (faster on CPU and GPU)


@dataclass
class Config:
    """A complete training configuration (see the module docstring)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    matching: MatchingConfig = field(default_factory=MatchingConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    seed: int = _setting(0, ge=0, integer=True)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self, source: str = "config") -> Config:
        """Check every choice and range; raise :class:`ConfigError` naming ``source`` and the key.

        Parameters
        ----------
        source : str
            Where the values came from (a file name, ``"command line"``), for the message.

        Returns
        -------
        Config
            ``self``, unchanged.
        """
        for section in ("model", "data", "augment", "train"):
            _validate_fields(getattr(self, section), f"{source}: {section}.")
        _validate_fields(self, f"{source}: ", only=("seed",))
        devices = self.train.devices
        if devices != "auto" and not (isinstance(devices, int) and devices >= 1):
            raise ConfigError(f"{source}: train.devices must be an integer >= 1 or 'auto', "
                              f"got {devices!r}")
        if self.augment.scale[0] > self.augment.scale[1]:
            raise ConfigError(f"{source}: augment.scale must be [low, high] with low <= high, "
                              f"got {self.augment.scale}")
        fr = self.data.fractions
        if len(fr) != 3 or min(fr) < 0 or abs(sum(fr) - 1.0) > 1e-6 or fr[0] <= 0:
            raise ConfigError(
                f"{source}: data.fractions must be three non-negative numbers (train, val, test) "
                f"summing to 1, got {fr}"
            )
        try:
            self.matching.build()  # the layer checks its own parameters
        except ParameterError as err:
            raise ConfigError(f"{source}: matching.{err}") from None
        from elim.models import backbone_options

        try:
            backbone_options(self.model.backbone, **self.model.options)
        except ElimError as err:
            raise ConfigError(f"{source}: model: {err}") from None
        return self


def _literal(hint: Any) -> tuple[Any, ...] | None:
    """The values of a ``Literal`` type hint, else None."""
    return get_args(hint) if get_origin(hint) is Literal else None


def _validate_fields(obj: Any, prefix: str, only: tuple[str, ...] | None = None) -> None:
    """Check the choices (Literal types, ``choices`` metadata) and ranges (``bounds``) of the
    fields of ``obj`` (of the names in ``only``, when given)."""
    hints = get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        if only is not None and f.name not in only:
            continue
        value = getattr(obj, f.name)
        choices = _literal(hints[f.name]) or f.metadata.get("choices")
        bounds: Bounds | None = f.metadata.get("bounds")
        try:
            if choices is not None:
                check_choice(f.name, value, choices)
            elif bounds is not None and f.metadata.get("length") is not None:
                _check_list(f.name, value, bounds, f.metadata["length"])
            elif bounds is not None:
                bounds.check(f.name, value)
        except ParameterError as err:
            raise ConfigError(f"{prefix}{err}") from None


def _check_list(name: str, value: Any, bounds: Bounds, length: int) -> None:
    if value is None and bounds.optional:
        return
    if not isinstance(value, (list, tuple)) or len(value) != length:
        raise ParameterError(name, f"a list of {length} numbers", value)
    item = dataclasses.replace(bounds, optional=False)
    for i, x in enumerate(value):
        item.check(f"{name}[{i}]", x)


_SECTIONS = {
    "model": ModelConfig,
    "data": DataConfig,
    "augment": AugmentConfig,
    "matching": MatchingConfig,
    "train": TrainConfig,
}


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Convert a YAML/JSON value to the field's type, or raise a ConfigError naming ``where``."""
    if value is None:
        if type(None) in get_args(hint) or hint is Any:
            return None
        raise ConfigError(f"{where}: must not be null")
    origin = get_origin(hint)
    if origin is Literal:  # a choice (checked by Config.validate); YAML may give precision 32
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    args = [a for a in get_args(hint) if a is not type(None)]
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_coerce(v, args[0], where) for v in value]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if args and origin is not None:  # a union such as int | None or int | str
        for arg in args:
            try:
                return _coerce(value, arg, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where}: {value!r} does not fit {hint}")
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if hint is int:
        try:
            ok = not isinstance(value, bool) and float(value).is_integer()
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return int(float(value))
    if hint is float:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    if hint is str:
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return str(value)
    return value


def _update_section(obj: Any, values: dict[str, Any], source: str, section: str) -> None:
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: section '{section}' must be a mapping, got {values!r}")
    hints = get_type_hints(type(obj))
    names = {f.name for f in dataclasses.fields(obj)}
    for key, value in values.items():
        if key not in names:
            raise ConfigError(
                f"{source}: unknown key '{section}.{key}' (known keys of '{section}': "
                f"{', '.join(sorted(names))})"
            )
        setattr(obj, key, _coerce(value, hints[key], f"{source}: {section}.{key}"))


def _keep_shared_options(model: ModelConfig, source: str) -> None:
    """Drop the options that ``model.backbone`` (just changed) does not have (see the module
    docstring): a preset's cnn-small ``channels`` do not follow ``--backbone resnet18``."""
    from elim.models import backbone_options

    try:
        known = backbone_options(model.backbone)
    except ElimError as err:
        raise ConfigError(f"{source}: model.backbone: {err}") from None
    model.options = {k: v for k, v in model.options.items() if k in known}


def config_from_dict(
    values: dict[str, Any], base: Config | None = None, source: str = "config"
) -> Config:
    """Overlay a nested mapping (``{model: {...}, train: {...}, seed: 1}``) on ``base``.

    Parameters
    ----------
    values : dict
        Sections and keys to set; every key must name a field.
    base : Config, optional
        The configuration to start from (not modified); the defaults when None.
    source : str
        Where ``values`` came from, for error messages.

    Returns
    -------
    Config
        The validated result (:meth:`Config.validate`).
    """
    config = copy.deepcopy(base) if base is not None else Config()
    if not isinstance(values, dict):
        raise ConfigError(
            f"{source}: expected a mapping at the top level, got {type(values).__name__}"
        )
    for key, value in values.items():
        if key == "seed":
            config.seed = _coerce(value, int, f"{source}: seed")
        elif key == "model":
            backbone = config.model.backbone
            _update_section(config.model, value or {}, source, key)
            if config.model.backbone != backbone and "options" not in (value or {}):
                _keep_shared_options(config.model, source)
        elif key in _SECTIONS:
            _update_section(getattr(config, key), value or {}, source, key)
        else:
            raise ConfigError(
                f"{source}: unknown top-level key '{key}' (known: "
                f"{', '.join([*_SECTIONS, 'seed'])})"
            )
    return config.validate(source)


def load_config_file(path: str | Path, base: Config | None = None) -> Config:
    """Read a YAML (or JSON) preset and overlay it on ``base`` (defaults when ``None``)."""
    from elim.deps import yaml

    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the configuration file ({err.strerror})") from err
    try:
        values = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as err:
        raise ConfigError(f"{path}: not valid YAML/JSON ({err})") from err
    return config_from_dict(values or {}, base, source=str(path))


def apply_overrides(
    config: Config, overrides: dict[str, Any], source: str = "command line"
) -> Config:
    """Set dotted keys (``{"train.lr": 1e-3, "seed": 2}``); ``None`` values are ignored."""
    nested: dict[str, Any] = {}
    for dotted, value in overrides.items():
        if value is None:
            continue
        if dotted == "seed":
            nested["seed"] = value
            continue
        section, _, key = dotted.partition(".")
        nested.setdefault(section, {})[key] = value
    return config_from_dict(nested, config, source=source)


#: Built-in presets (``--preset``; the paper's settings are the YAML files in ``configs/paper/``).
#: Both are *small-data* settings that depart from the paper's optimisation (Sec. 5.1: lr 5e-5 /
#: 1e-5, decay ×0.8 after 5 K and every 20 K iterations, batch 128-512), because they train from
#: scratch for a few hundred iterations on a CPU: cnn-small with signed features (BatchNorm, no
#: ReLU), batches of 10 identities × 5 faces for more updates per epoch, Adam 3e-3 for f_φ and
#: f_θ with cosine decay to 0, and one torch thread per process (a tiny model gains little from
#: more; ``elim cv --jobs`` runs fits side by side instead). The cnn-small ``channels`` apply to
#: cnn-small only (see "Backbone options" in the module docstring).
def _small_data_preset(dataset: str, image_size: int, epochs: int, channels: list[int],
                       augment: dict[str, Any] | None = None) -> dict[str, Any]:
    """The small-data recipe described above, for ``dataset`` at ``image_size`` px."""
    return {
        "model": {"backbone": "cnn-small", "feature_dim": 64,
                  "options": {"channels": channels, "feature_activation": "bn"}},
        "data": {"dataset": dataset, "image_size": image_size, "batch_identities": 10,
                 "samples_per_identity": 5},
        "augment": dict(augment or {}),
        "train": {"method": "elim", "epochs": epochs, "lr": 3e-3, "lr_head": 3e-3,
                  "lr_schedule": "cosine", "warmup": 0.1, "threads": 1},
    }


#: The faces-in-the-wild augmentation of the ``ck_plus`` recipe (README "Results" measures each
#: part): on top of the paper's random crop + flip, ±10° rotation, ±5 % shift, brightness ±0.2,
#: contrast ×(1 ± 0.3), gamma exp(±0.3), and a blur and a JPEG re-compression each with
#: probability 0.3 — the lighting, skin tone and camera differences between CK+'s grey studio
#: crops and ordinary photos.
FACE_AUGMENT: dict[str, Any] = {
    "scale": [0.8, 1.0], "rotate": 10.0, "translate": 0.05, "brightness": 0.2,
    "contrast": 0.3, "gamma": 0.3, "blur": 0.3, "jpeg": 0.3,
}

PRESETS: dict[str, dict[str, Any]] = {
    # ``elim train`` with no arguments: the synthetic default dataset (60 identities x 4 clips x
    # 12 frames, drawn in memory; identity-disjoint 70/15/15 % split) at 32 px in about a
    # minute on a CPU; a narrow cnn-small, 20 epochs, the paper's crop + flip.
    "synthetic": _small_data_preset("synthetic", 32, epochs=20, channels=[8, 16, 32, 64]),
    # ``elim train/cv`` on CK+48 (../shared/data/ck_plus_48/labels.csv, read by the "csv"
    # reader; 927 faces of 106 subjects, 48×48), and the recipe for faces unlike the training
    # set: cnn-small 16-32-64-128, 60 epochs, FACE_AUGMENT. README's `elim cv` (6 folds ×
    # 2 methods × 3 seeds = 36 fits) is sized for about 15 minutes on 2 cores.
    "ck_plus": _small_data_preset("csv", 48, epochs=60, channels=[16, 32, 64, 128],
                                  augment=FACE_AUGMENT),
}


def preset_config(name: str) -> Config:
    """The built-in preset ``name`` (see :data:`PRESETS`) over the defaults."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(sorted(PRESETS))}")
    return config_from_dict(PRESETS[name], source=f"preset {name}")


def config_from_run(run_config: dict[str, Any], source: str = "config.json") -> Config:
    """Rebuild a :class:`Config` from a run's ``config.json`` (its flat ``model`` section)."""
    model = dict(run_config.get("model", {}))
    core = {k: model.pop(k) for k in ("backbone", "feature_dim", "pretrained", "head_output")
            if k in model}
    values: dict[str, Any] = {"model": {**core, "options": model}}
    for key in ("data", "augment", "matching", "train"):
        if key in run_config:
            values[key] = dict(run_config[key])
    if "augment" in values.get("data", {}):  # runs written before the augment section
        values.setdefault("augment", {})["enabled"] = values["data"].pop("augment")
    if "seed" in run_config:
        values["seed"] = run_config["seed"]
    return config_from_dict(values, source=source)


def preprocess_for(config: Config) -> Preprocess:
    """The :class:`Preprocess` of a config (backbone defaults fill ``image_size/mean/std``)."""
    from elim.models import Preprocess, backbone_defaults

    d = backbone_defaults(config.model.backbone)
    data = config.data
    return Preprocess(
        int(data.image_size or d["image_size"]),
        tuple(data.mean or d["mean"]),
        tuple(data.std or d["std"]),
    )
