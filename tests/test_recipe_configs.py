"""configs/recipe/*.yaml (README's recipe ablation): each loads over the ck_plus preset and
changes what its comment says, nothing else."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest

from elim.config import FACE_AUGMENT, AugmentConfig, load_config_file, preset_config

RECIPES = Path(__file__).resolve().parents[1] / "configs" / "recipe"
PAPER_AUGMENT = asdict(AugmentConfig())  # the paper's random crop + flip only
NARROW = [8, 16, 32, 64]


@pytest.mark.parametrize("name, channels, epochs, augment", [
    ("previous_ck_plus", NARROW, 50, PAPER_AUGMENT),
    ("narrow_face_augment", NARROW, 50, {**PAPER_AUGMENT, **FACE_AUGMENT}),
    ("wide_crop_flip", [16, 32, 64, 128], 60, PAPER_AUGMENT),
])
def test_recipe_configs(name, channels, epochs, augment):
    preset = preset_config("ck_plus")
    config = load_config_file(RECIPES / f"{name}.yaml", base=preset)
    assert config.model.options["channels"] == channels and config.train.epochs == epochs
    assert asdict(config.augment) == augment
    assert (config.data, config.matching, config.train.lr) == (preset.data, preset.matching,
                                                               preset.train.lr)
