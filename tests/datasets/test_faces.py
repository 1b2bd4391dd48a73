"""``open_dataset``: a reader's records validated and fingerprinted once, cached, reused; where
caches live by default."""

from __future__ import annotations

from pathlib import Path

import pytest

import elim.data.cache as cache_mod
import elim.data.records as records_mod
from elim.datasets import default_cache_root, open_dataset


@pytest.fixture
def labels(tmp_path: Path) -> Path:
    """A CSV dataset of 4 identities × 3 faces at 16 px."""
    from elim.datasets.synthetic import write_synthetic

    return write_synthetic(tmp_path / "faces", progress=False, n_identities=4,
                           clips_per_identity=1, frames_per_clip=3, image_size=16)


def test_open_dataset_builds_once_then_reuses(tmp_path, monkeypatch, labels):
    first = open_dataset("csv", labels, 16, cache_dir=tmp_path / "caches", progress=False)
    assert first.path.parent == tmp_path / "caches" and first.path.name.startswith("csv-16-")

    def fail(*a, **k):
        raise AssertionError("cache should have been reused")

    monkeypatch.setattr(cache_mod, "extract_faces", fail)
    second = open_dataset("csv", labels, 16, cache_dir=tmp_path / "caches", progress=False)
    assert second.path == first.path and len(second) == 12
    monkeypatch.undo()
    other = open_dataset("csv", labels, 24, cache_dir=tmp_path / "caches", progress=False)
    assert other.path != first.path and other.image_size == 24


def test_records_are_validated_and_fingerprinted_once_per_open(tmp_path, monkeypatch, labels):
    import sys

    calls = {"validate_records": 0, "records_fingerprint": 0}
    originals = {"validate_records": records_mod.validate_records,
                 "records_fingerprint": cache_mod.records_fingerprint}

    def counted(name):
        def wrapper(*a, **k):
            calls[name] += 1
            return originals[name](*a, **k)
        return wrapper

    for module in [m for n, m in sys.modules.items() if n.startswith("elim")]:
        for name, real in originals.items():  # wherever the functions were imported to
            if getattr(module, name, None) is real:
                monkeypatch.setattr(module, name, counted(name))
    cache = open_dataset("csv", labels, 16, cache_dir=tmp_path / "caches", progress=False)
    assert len(cache) == 12
    assert calls == {"validate_records": 1, "records_fingerprint": 1}
    assert cache.path.name.endswith(cache.meta["fingerprint"][:12])  # the one fingerprint


def test_open_dataset_synthetic_in_memory():
    cache = open_dataset("synthetic", None, 32, n_identities=3, clips_per_identity=1,
                         frames_per_clip=2)
    assert cache.images.shape == (6, 32, 32, 3) and cache.table.identity.nunique() == 3
    assert cache.path is None


def test_default_cache_root(tmp_path, monkeypatch):
    monkeypatch.delenv("ELIM_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "labels.csv").write_text("x")
    assert default_cache_root(raw / "labels.csv") == raw / ".elim_cache"
    assert default_cache_root(raw) == raw / ".elim_cache"
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)  # read-only folder (also respected when running as root)
    try:
        assert default_cache_root(ro) == tmp_path / "xdg" / "elim"
    finally:
        ro.chmod(0o755)
    monkeypatch.setenv("ELIM_CACHE_DIR", str(tmp_path / "env"))
    assert default_cache_root(raw) == tmp_path / "env"
