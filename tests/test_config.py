"""Training configuration: presets, YAML files, overrides and errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from elim.config import (
    PRESETS,
    Config,
    ConfigError,
    apply_overrides,
    config_from_dict,
    config_from_run,
    load_config_file,
    preset_config,
)

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_defaults_follow_the_paper():
    c = Config()
    assert (c.train.lr, c.train.lr_head) == (5e-5, 1e-5)
    assert (c.train.lr_decay, c.train.lr_decay_first, c.train.lr_decay_every) == (0.8, 5000, 20000)
    assert (c.matching.n_identities, c.matching.k, c.model.feature_dim) == (10, 10, 64)
    assert c.train.method == "elim"


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_yaml_presets_equal_the_builtin_ones(name):
    assert load_config_file(CONFIGS / f"{name}.yaml") == preset_config(name)


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
