"""configs/paper/*.yaml: one valid preset per dataset × backbone of Tables 1–3."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from elim.config import load_config_file
from elim.datasets import get_reader
from elim.models import list_backbones

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "paper"
BATCH = {"alexnet-light": 512, "resnet18": 256, "mixer": 128}
DATASETS = ("afew-va", "aff-wild", "aff-wild2")


def test_one_preset_per_table_row():
    names = sorted(p.stem for p in CONFIGS.glob("*.yaml"))
    assert names == sorted(f"{d}_{b}" for d in DATASETS for b in BATCH)


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.stem)
def test_preset_holds_the_paper_settings(path):
    cfg = load_config_file(path)
    dataset, backbone = path.stem.split("_")
    assert cfg.data.dataset == dataset and cfg.model.backbone == backbone
    assert backbone in list_backbones()
    assert cfg.model.pretrained and cfg.model.feature_dim == 64
    assert cfg.data.image_size == 224
    batch = cfg.data.batch_identities * cfg.data.samples_per_identity
    assert abs(batch - BATCH[backbone]) <= 5
    assert cfg.data.batch_identities >= cfg.matching.n_identities == 10
    assert cfg.data.samples_per_identity >= cfg.matching.k == 10
    assert cfg.matching.norm_eps == pytest.approx(1e-6)
    t = cfg.train
    assert t.method == "elim" and (t.lr, t.lr_head) == pytest.approx((5e-5, 1e-5))
    assert (t.lr_decay, t.lr_decay_first, t.lr_decay_every) == (pytest.approx(0.8), 5000, 20000)
    # every reader option is a keyword of that dataset's reader
    params = inspect.signature(get_reader(dataset)).parameters
    assert set(cfg.data.options) <= set(params)
    assert cfg.data.split_mode == {"afew-va": "random", "aff-wild": "auto",
                                   "aff-wild2": "official"}[dataset]
