"""The identity study read back: its table and Fig. 6 from a ``study.json``."""

from __future__ import annotations

from elim.analysis.identities import plot_study, study_markdown


def _stat(mean: float, std: float) -> dict:
    return {"mean": mean, "std": std, "n": 2}


RESULT = {
    "dataset": "synthetic", "fractions": [0.5, 1.0], "methods": ["elim-no-va", "baseline"],
    "seeds": [0, 1], "pool_identities": 8, "val_identities": 3, "test_identities": 5,
    "test_faces": 60,
    "summary": {m: [{"fraction": f, "n_identities": n, "ccc_mean": _stat(c, 0.01)}
                    for f, n, c in ((0.5, 4, base), (1.0, 8, base + 0.1))]
                for m, base in (("elim-no-va", 0.5), ("baseline", 0.4))},
}


def test_study_table_has_a_row_per_method_and_a_column_per_fraction():
    md = study_markdown(RESULT)
    assert "| method | 4 ids (50%) | 8 ids (100%) |" in md
    assert "| ELIM w/o L_va | 0.500 ± 0.010 | 0.600 ± 0.010 |" in md
    assert "| baseline | 0.400 ± 0.010 | 0.500 ± 0.010 |" in md
    assert "5 fixed held-out identities (60 faces)" in md


def test_study_figure(tmp_path):
    png = plot_study(RESULT, tmp_path / "identities.png")
    assert png.stat().st_size > 0 and png.with_suffix(".svg").stat().st_size > 0
