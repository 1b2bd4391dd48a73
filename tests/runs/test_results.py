"""Resumable result folders keep one settings fingerprint."""

from __future__ import annotations

import pytest

from elim.errors import ElimError
from elim.runs import ResultStore, fingerprint


def test_fingerprint_is_order_independent():
    assert fingerprint({"a": 1, "b": [1, 2]}) == fingerprint({"b": [1, 2], "a": 1})
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})


def test_store_round_trip_and_refuses_other_settings(tmp_path):
    store = ResultStore(tmp_path, {"x": 1}, "meta.json", "test")
    assert store.get("job") is None
    store.put("job", {"value": 3})
    again = ResultStore(tmp_path, {"x": 1}, "meta.json", "test")
    assert again.get("job")["value"] == 3
    with pytest.raises(ElimError, match="other settings"):
        ResultStore(tmp_path, {"x": 2}, "meta.json", "test")
