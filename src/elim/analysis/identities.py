"""The number-of-training-identities study (paper Sec. 5.4 A5, Fig. 6), read back: its table
(``study.md``) and its figure from a ``study.json`` written by
:func:`elim.studies.identities.run_identity_study`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from elim.analysis.ablation import pm
from elim.analysis.markdown import results_page
from elim.config import METHOD_VARIANTS

__all__ = ["plot_study", "study_markdown"]


def _label(method: str) -> str:
    """A method's label in tables and figures (:data:`elim.config.METHOD_VARIANTS`)."""
    variant = METHOD_VARIANTS.get(method)
    return variant.label if variant is not None else method


def study_markdown(result: dict[str, Any]) -> str:
    """Mean CCC (± std over seeds) per method and number of training identities."""
    fr = result["fractions"]
    first = result["summary"][result["methods"][0]]
    note = (f"Test: {result['test_identities']} fixed held-out identities "
            f"({result['test_faces']} faces); validation: {result['val_identities']} fixed "
            f"identities; training subsets of a pool of {result['pool_identities']} identities "
            "(nested per seed). CCC (mean) on the test identities, mean ± std (ddof = 1) over "
            f"seeds {result['seeds']}.")
    columns = ["method", *(f"{row['n_identities']} ids ({100 * f:g}%)"
                           for f, row in zip(fr, first))]
    rows = [[_label(m), *(pm(row["ccc_mean"]) for row in result["summary"][m])]
            for m in result["methods"]]
    lines = results_page(f"Number of training identities: {result['dataset']}", note, columns,
                         rows)
    return "\n".join(lines) + "\n"


def plot_study(result: dict[str, Any], path: str | Path) -> Path:
    """Fig. 6 from a study's JSON (PNG + SVG)."""
    from elim.analysis import plots

    scores = {_label(m): [r["ccc_mean"]["mean"] for r in result["summary"][m]]
              for m in result["methods"]}
    errors = {_label(m): [r["ccc_mean"]["std"] for r in result["summary"][m]]
              for m in result["methods"]}
    counts = [r["n_identities"] for r in result["summary"][result["methods"][0]]]
    return plots.identity_study(result["fractions"], scores, path, errors=errors,
                                metric=f"test CCC (mean), {result['test_identities']} held-out ids",
                                n_identities=counts)
