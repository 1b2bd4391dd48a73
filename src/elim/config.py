"""Training configuration: typed sections, YAML/JSON presets and command-line overrides.

A configuration is a :class:`Config` with five parts, mirrored one-to-one by the YAML presets in
``configs/`` and by the ``config.json`` of a run directory:

``model``     backbone f_φ and feature size d (what :func:`elim.models.build_model` takes);
``data``      dataset, image size, split rule and the identity batch sampler (P × K);
``matching``  the identity-matching layer (Sec. 4.1 and 4.3: ε, N, k, weights, sampling, solver);
``train``     method (``elim`` or ``baseline``), optimiser, learning-rate schedule, L_main warm-up,
              engine switches (accelerator, precision, wall-clock cap);
``seed``      one integer that seeds everything (Lightning, sampler, augmentation, matching).

Every preset key must name a field: an unknown key is an error that names the file and the key,
so a typo never silently falls back to a default. Command-line flags override the file.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args, get_origin, get_type_hints

from elim.errors import ElimError

if TYPE_CHECKING:
    from elim.models import Preprocess

__all__ = [
    "PRESETS",
    "Config",
    "DataConfig",
    "MatchingConfig",
    "ModelConfig",
    "TrainConfig",
    "apply_overrides",
    "config_from_dict",
    "config_from_run",
    "load_config_file",
    "preprocess_for",
    "preset_config",
]


class ConfigError(ElimError):
    """A configuration file or value is invalid; the message names the file/key and the fix."""


@dataclass
class ModelConfig:
    """The network: backbone f_φ (registry name) with feature size d, and the affine head f_θ."""

    backbone: str = "cnn-small"
    feature_dim: int = 64
    pretrained: bool = False
    head_output: str = "linear"  # linear | tanh
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

    ``image_size``/``mean``/``std`` default to the backbone's own (``backbone_defaults``).
    Splits: the dataset's ``split`` column when present (``split_mode="auto"``), else an
    identity-disjoint ``group_split`` with ``fractions`` (train, val, test) seeded by
    ``split_seed``. Batches: ``batch_identities`` P identities × ``samples_per_identity`` K.
    """

    dataset: str = "synthetic"
    root: str | None = None
    image_size: int | None = None
    mean: list[float] | None = None
    std: list[float] | None = None
    margin: float = 0.25
    cache_dir: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    split_mode: str = "auto"  # auto | official | random
    fractions: list[float] = field(default_factory=lambda: [0.7, 0.15, 0.15])
    split_seed: int = 0
    batch_identities: int = 10
    samples_per_identity: int = 10
    eval_batch_size: int = 256
    augment: bool = True
    num_workers: int = 0


@dataclass
class MatchingConfig:
    """The identity-matching layer (Eqs. 3, 4, 7, 8) used by ``method=elim`` only."""

    n_identities: int = 10
    k: int = 10
    eps: float = 0.05
    max_iter: int = 100
    tol: float = 1e-4
    weights: str = "relevance"  # relevance | self
    sampling: str = "gumbel"  # gumbel | none
    solver: str = "sinkhorn"  # sinkhorn | exact | qp
    grad: str = "detach"  # detach | autodiff
    norm_eps: float = 1e-6
    mass_floor: float = 1e-3
    cos_eps: float = 1e-8

    def build(self):
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
    all training steps. ``threads`` sets torch's CPU threads (``None``: torch's default; on a
    shared, oversubscribed CPU one thread per process is often fastest).
    Scaling and faults (docs/scaling.md): ``strategy="ddp"`` with ``devices`` > 1 runs one
    process per device, each drawing its own identities; ``checkpoint_every`` writes the resume
    checkpoint every that many steps (0: at epoch ends only); a step with a non-finite loss or
    gradient is skipped, and ``max_bad_steps`` such steps in a row stop training (0: never).
    """

    method: str = "elim"  # elim | baseline
    epochs: int = 30
    max_steps: int | None = None
    lr: float = 5e-5
    lr_head: float = 1e-5
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    weight_decay: float = 0.0
    lr_schedule: str = "step"  # step (paper) | cosine (to 0 over all steps)
    lr_decay: float = 0.8
    lr_decay_first: int = 5000
    lr_decay_every: int = 20000
    warmup: float = 0.1
    warmup_start: float = 0.0
    main_weight: float = 1.0
    w_mse: float = 1.0
    w_pcc: float = 1.0
    w_ccc: float = 1.0
    grad_clip: float | None = None
    accelerator: str = "auto"
    devices: int | str = 1
    strategy: str = "auto"  # auto | ddp (one process per device)
    checkpoint_every: int = 500  # steps between resume checkpoints (0: epoch ends only)
    max_bad_steps: int = 20  # consecutive non-finite steps before training stops (0: never)
    precision: str = "32"
    max_minutes: float | None = None
    val_every: int = 1
    progress: bool = True
    threads: int | None = None  # torch CPU threads (None: torch's default)
    channels_last: bool = True  # NHWC memory format for convolutions (faster on CPU and GPU)


@dataclass
class Config:
    """A complete training configuration (see the module docstring)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    matching: MatchingConfig = field(default_factory=MatchingConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self, source: str = "config") -> Config:
        """Check choices and ranges; raise :class:`ConfigError` naming ``source`` and the key."""
        choices = {
            ("train", "method"): ("elim", "baseline"),
            ("train", "lr_schedule"): ("step", "cosine"),
            ("train", "precision"): ("32", "bf16-mixed", "16-mixed", "64"),
            ("train", "accelerator"): ("cpu", "gpu", "cuda", "mps", "auto"),
            ("train", "strategy"): ("auto", "ddp"),
            ("matching", "weights"): ("relevance", "self"),
            ("matching", "sampling"): ("gumbel", "none"),
            ("matching", "solver"): ("sinkhorn", "exact", "qp"),
            ("matching", "grad"): ("detach", "autodiff"),
            ("data", "split_mode"): ("auto", "official", "random"),
        }
        for (section, key), allowed in choices.items():
            value = getattr(getattr(self, section), key)
            if str(value) not in allowed:
                raise ConfigError(
                    f"{source}: {section}.{key} = {value!r} is not one of {', '.join(allowed)}"
                )
        positive = [
            ("data", "batch_identities"), ("data", "samples_per_identity"),
            ("data", "eval_batch_size"), ("model", "feature_dim"), ("train", "epochs"),
            ("matching", "n_identities"), ("matching", "k"), ("matching", "eps"),
        ]
        for section, key in positive:
            if not getattr(getattr(self, section), key) > 0:
                raise ConfigError(f"{source}: {section}.{key} must be > 0")
        for key in ("checkpoint_every", "max_bad_steps"):
            if getattr(self.train, key) < 0:
                raise ConfigError(f"{source}: train.{key} must be >= 0 (0 switches it off)")
        if not 0.0 <= self.train.warmup <= 1.0:
            raise ConfigError(f"{source}: train.warmup is a fraction of all steps, in [0, 1]")
        fr = self.data.fractions
        if len(fr) != 3 or min(fr) < 0 or abs(sum(fr) - 1.0) > 1e-6 or fr[0] <= 0:
            raise ConfigError(
                f"{source}: data.fractions must be three non-negative numbers (train, val, test) "
                f"summing to 1, got {fr}"
            )
        return self


_SECTIONS = {
    "model": ModelConfig,
    "data": DataConfig,
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


def config_from_dict(
    values: dict[str, Any], base: Config | None = None, source: str = "config"
) -> Config:
    """Overlay a nested mapping (``{model: {...}, train: {...}, seed: 1}``) on ``base``."""
    config = copy.deepcopy(base) if base is not None else Config()
    if not isinstance(values, dict):
        raise ConfigError(
            f"{source}: expected a mapping at the top level, got {type(values).__name__}"
        )
    for key, value in values.items():
        if key == "seed":
            config.seed = _coerce(value, int, f"{source}: seed")
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
    import yaml

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


#: Built-in presets (the YAML files in ``configs/`` hold the same values; a test keeps them
#: equal). Both are *small-data* settings that depart from the paper's optimisation (Sec. 5.1:
#: lr 5e-5 / 1e-5, decay ×0.8 after 5 K and every 20 K iterations), because they train from
#: scratch for a few hundred iterations on a CPU: larger learning rates, cosine decay.
PRESETS: dict[str, dict[str, Any]] = {
    # ``elim train`` with no arguments: the synthetic default dataset (60 identities, 2,880
    # faces) at 32 px in about a minute on a CPU; same recipe as ``ck_plus`` with 20 epochs.
    "synthetic": {
        "model": {"backbone": "cnn-small", "feature_dim": 64,
                  "options": {"channels": [8, 16, 32, 64], "feature_activation": "bn"}},
        "data": {"dataset": "synthetic", "image_size": 32, "batch_identities": 10,
                 "samples_per_identity": 5},
        "train": {"method": "elim", "epochs": 20, "lr": 3e-3, "lr_head": 3e-3,
                  "lr_schedule": "cosine", "warmup": 0.1, "threads": 1},
    },
    # ``elim cv`` on CK+48 (927 faces of 106 subjects, 48×48): 6-fold subject-independent CV,
    # 36 fits in 15 minutes on 2 cores: a narrow cnn-small with signed features (BN, no ReLU),
    # small batches (10 identities × 5 faces) for more updates, 50 epochs with cosine decay.
    "ck_plus": {
        "model": {"backbone": "cnn-small", "feature_dim": 64,
                  "options": {"channels": [8, 16, 32, 64], "feature_activation": "bn"}},
        "data": {"dataset": "csv", "image_size": 48, "batch_identities": 10,
                 "samples_per_identity": 5},
        "train": {"method": "elim", "epochs": 50, "lr": 3e-3, "lr_head": 3e-3,
                  "lr_schedule": "cosine", "warmup": 0.1, "threads": 1},
    },
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
    for key in ("data", "matching", "train"):
        if key in run_config:
            values[key] = run_config[key]
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
