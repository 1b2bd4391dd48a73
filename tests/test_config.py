"""Training configuration: presets, YAML files, overrides and errors."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import pytest

from elim.cli import main
from elim.config import (
    PRESETS,
    Config,
    ConfigError,
    MatchingConfig,
    apply_overrides,
    config_from_dict,
    config_from_run,
    load_config_file,
    preset_config,
)
from elim.matching import IdentityMatching
from elim.models import build_model, list_backbones

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_defaults_follow_the_paper():
    c = Config()
    assert (c.train.lr, c.train.lr_head) == (5e-5, 1e-5)
    assert (c.train.lr_decay, c.train.lr_decay_first, c.train.lr_decay_every) == (0.8, 5000, 20000)
    assert (c.matching.n_identities, c.matching.k, c.model.feature_dim) == (10, 10, 64)
    assert c.train.method == "elim"


def test_every_shipped_yaml_loads():
    files = sorted(CONFIGS.rglob("*.yaml"))
    assert files
    for f in files:
        load_config_file(f)


def test_yaml_overlays_defaults_and_flags_override_yaml(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("seed: 3\ntrain:\n  lr: 0.01\n  epochs: 4\nmatching:\n  eps: 0.2\n")
    c = load_config_file(f)
    assert (c.seed, c.train.lr, c.train.epochs, c.matching.eps) == (3, 0.01, 4, 0.2)
    assert c.train.lr_head == Config().train.lr_head  # untouched keys keep their defaults
    c2 = apply_overrides(c, {"train.lr": 0.5, "seed": 7, "train.epochs": None})
    assert (c2.train.lr, c2.seed, c2.train.epochs) == (0.5, 7, 4)
    assert c.train.lr == 0.01  # the base is not modified


def test_unknown_key_names_file_and_key(tmp_path):
    f = tmp_path / "typo.yaml"
    f.write_text("train:\n  lerning_rate: 0.1\n")
    with pytest.raises(ConfigError, match=r"typo\.yaml.*train\.lerning_rate"):
        load_config_file(f)
    f.write_text("trian:\n  lr: 0.1\n")
    with pytest.raises(ConfigError, match=r"typo\.yaml.*'trian'"):
        load_config_file(f)


def test_bad_values_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="train.method"):
        config_from_dict({"train": {"method": "magic"}})
    with pytest.raises(ConfigError, match="expected an integer"):
        config_from_dict({"train": {"epochs": "many"}})
    with pytest.raises(ConfigError, match="data.fractions"):
        config_from_dict({"data": {"fractions": [0.5, 0.6, 0.1]}})
    f = tmp_path / "broken.yaml"
    f.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="broken.yaml"):
        load_config_file(f)


def test_config_round_trips_through_a_run_config():
    from elim.runs import run_config

    c = preset_config("synthetic")
    back = config_from_run(run_config(c))
    assert back.train == c.train and back.matching == c.matching and back.seed == c.seed
    assert back.model.to_model_dict() == c.model.to_model_dict()


def test_matching_build_passes_every_field():
    values = {"n_identities": 3, "k": 4, "eps": 0.2, "max_iter": 7, "tol": 1e-3,
              "weights": "self", "sampling": "none", "solver": "sinkhorn", "grad": "autodiff",
              "norm_eps": 1e-5, "mass_floor": 0.01, "cos_eps": 1e-7, "shift": "vector"}
    assert set(values) == {f.name for f in dataclasses.fields(MatchingConfig)}
    layer = MatchingConfig(**values).build()
    assert {name: getattr(layer, name) for name in values} == values
    # the config's defaults are the layer's, every one of them (the repr leaves some out)
    layer = {n: p.default for n, p in inspect.signature(IdentityMatching).parameters.items()}
    assert dataclasses.asdict(MatchingConfig()) == layer


@pytest.mark.parametrize(
    "values, message",
    [
        ({"train": {"lr": -1}}, r"train\.lr must be a finite number > 0, got -1.0"),
        ({"train": {"lr": 0}}, r"train\.lr must be a finite number > 0, got 0.0"),
        ({"train": {"lr": "nan"}}, r"train\.lr must be a finite number > 0, got nan"),
        ({"train": {"lr_head": float("inf")}}, r"train\.lr_head must be a finite number > 0"),
        ({"train": {"grad_clip": float("nan")}}, r"train\.grad_clip must be a finite number > 0"),
        ({"train": {"grad_clip": -1}}, r"train\.grad_clip must be a finite number > 0 or None"),
        ({"seed": -1}, r"config: seed must be an integer >= 0, got -1"),
        ({"train": {"threads": -2}}, r"train\.threads must be an integer >= 0 or None, got -2"),
        ({"data": {"image_size": 4}}, r"data\.image_size must be an integer in \[8, 1024\]"),
        ({"data": {"image_size": 100000}}, r"data\.image_size must be an integer in \[8, 1024\]"),
        ({"data": {"margin": -0.1}}, r"data\.margin must be a finite number >= 0"),
        ({"data": {"std": [0.5, 0.0, 0.5]}}, r"data\.std\[1\] must be a finite number > 0"),
        ({"data": {"mean": [0.5, 0.5]}}, r"data\.mean must be a list of 3 numbers"),
        ({"train": {"betas": [0.9, 1.0]}},
         r"train\.betas\[1\] must be a finite number in \[0, 1\)"),
        ({"train": {"lr_decay": 0}}, r"train\.lr_decay must be a finite number in \(0, 1\]"),
        ({"train": {"epochs": 0}}, r"train\.epochs must be an integer >= 1, got 0"),
        ({"train": {"devices": 0}}, r"train\.devices must be an integer >= 1 or 'auto'"),
        ({"train": {"warmup": 1.5}}, r"train\.warmup must be a finite number in \[0, 1\]"),
        ({"matching": {"eps": 1e-300}}, r"matching\.eps must be a finite number >= 0\.0001"),
        ({"matching": {"norm_eps": -1}}, r"matching\.norm_eps must be a finite number > 0"),
        ({"matching": {"max_iter": 0}}, r"matching\.max_iter must be an integer >= 1, got 0"),
        ({"matching": {"solver": "exact", "eps": 0.1}},
         r"matching\.eps must be left at its default 0\.05 with solver 'exact'"),
        ({"matching": {"solver": "simplex"}},
         r"matching\.solver must be one of 'sinkhorn', 'exact', 'qp', got 'simplex'"),
        ({"model": {"head_output": "relu"}}, r"model\.head_output must be one of 'linear', 'tanh'"),
        ({"model": {"options": {"channel": [8]}}}, r"model: backbone 'cnn-small' has no option"),
    ],
)
def test_every_range_is_checked_and_names_the_key(values, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict(values)


def test_choices_and_ranges_are_checked_after_assignment_too():
    config = Config()
    config.matching.weights = "l2"
    with pytest.raises(ConfigError, match=r"my run: matching\.weights must be one of"):
        config.validate("my run")
    config = Config()
    config.train.precision = "8"
    with pytest.raises(ConfigError, match=r"train\.precision must be one of '32', 'bf16-mixed'"):
        config.validate()


def test_zero_threads_and_yaml_numbers_for_choices():
    config = config_from_dict({"train": {"threads": 0, "precision": 32}})
    assert (config.train.threads, config.train.precision) == (0, "32")


@pytest.mark.parametrize("flags, message", [
    (["--lr", "-1"], "train.lr must be a finite number > 0, got -1.0"),
    (["--lr", "nan"], "train.lr must be a finite number > 0, got nan"),
    (["--eps", "1e-300"], "matching.eps must be a finite number >= 0.0001"),
    (["--solver", "exact", "--eps", "0.1"], "matching.eps must be left at its default 0.05"),
])
def test_a_bad_flag_is_one_line_and_exit_2(flags, message, tmp_path, capsys):
    assert main(["train", *flags, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("backbone", list_backbones())
def test_a_preset_with_another_backbone_drops_the_options_it_does_not_have(preset, backbone):
    from elim.cli import build_parser
    from elim.commands.train import config_from_args

    args = build_parser().parse_args(["train", "--preset", preset, "--backbone", backbone])
    config = config_from_args(args, default_preset="synthetic")
    assert config.model.backbone == backbone
    model = config.model.to_model_dict()  # every option resolves for this backbone
    assert model["feature_activation"] == "bn"  # the preset's shared option is kept
    if backbone == "cnn-small":
        assert model["channels"] == PRESETS[preset]["model"]["options"]["channels"]
    elif backbone != "mixer":  # mixer (59 M parameters): resolving its config is enough
        assert build_model(model).feature_dim == 64


def test_a_file_that_changes_the_backbone_over_a_preset(tmp_path):
    f = tmp_path / "r18.yaml"
    f.write_text("model:\n  backbone: resnet18\n")
    config = load_config_file(f, base=preset_config("ck_plus"))
    assert config.model.options == {"feature_activation": "bn"}
    f.write_text("model:\n  backbone: resnet18\n  options: {channels: [8]}\n")
    with pytest.raises(ConfigError, match=r"r18\.yaml: model: backbone 'resnet18' has no option"):
        load_config_file(f, base=preset_config("ck_plus"))


def test_augment_section_is_validated_and_recorded():
    from elim.config import config_from_dict, config_from_run
    from elim.runs import run_config

    config = config_from_dict({"augment": {"rotate": 10, "grey": 0.2}})
    assert run_config(config)["augment"]["rotate"] == 10.0
    back = config_from_run(run_config(config))
    assert back.augment == config.augment
    for bad, key in (({"rotate": 90}, "augment.rotate"), ({"grey": 1.5}, "augment.grey"),
                     ({"scale": [0.9, 0.5]}, "augment.scale")):
        with pytest.raises(ConfigError, match=key):
            config_from_dict({"augment": bad})


def test_runs_written_before_the_augment_section_still_load():
    from elim.config import config_from_run
    from elim.runs import run_config

    old = run_config(Config())
    del old["augment"]
    old["data"]["augment"] = False
    assert config_from_run(old).augment.enabled is False
