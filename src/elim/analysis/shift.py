"""The identity-shift benchmark, read back: its rows (:data:`SHIFT_METHODS`, :func:`shift_rows`),
summary, table (``shift.md``) and figure (``shift.png``) from the per-fit results of
:func:`elim.studies.shift.run_shift_study`.

A row is a trained method measured plainly or with test-time normalisation (``<method>+ttn``,
the fit's ``ttn`` scores). For every row and strength: test CCC (mean, V, A), the consistency
spread on the probe faces (:mod:`elim.analysis.consistency`; lower = more consistent), the CCC
on the probe faces and the identity-probe accuracy, each as mean ± std over seeds; and paired
differences (:func:`elim.analysis.paired.paired`, same seeds) of every row against the baseline
and, for the extensions, against ELIM (the paper's method).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from elim.analysis.markdown import results_page
from elim.analysis.paired import format_paired, paired
from elim.config import METHOD_VARIANTS, MethodVariant
from elim.errors import ElimError
from elim.metrics import aggregate

__all__ = [
    "DEFAULT_STRENGTHS",
    "METRICS",
    "PAIRED_METRICS",
    "SHIFT_METHODS",
    "STUDY_DATA",
    "TTN",
    "plot_shift",
    "shift_markdown",
    "shift_rows",
    "summarise_shift",
]

#: Summarised measures: name → (label, lower is better).
METRICS: dict[str, tuple[str, bool]] = {
    "ccc_mean": ("test CCC (mean)", False),
    "ccc_v": ("test CCC valence", False),
    "ccc_a": ("test CCC arousal", False),
    "spread": ("consistency spread (probe faces)", True),
    "probe_ccc": ("CCC (mean) on the probe faces", False),
    "identity_probe": ("identity-probe accuracy (test features)", True),
}
#: Measures compared pairwise (row − reference over the same seeds).
PAIRED_METRICS = ("ccc_mean", "probe_ccc", "spread")
#: The methods trained by the study (name → label, configuration overrides).
SHIFT_METHODS: dict[str, MethodVariant] = {
    "baseline": METHOD_VARIANTS["baseline"],
    "elim": METHOD_VARIANTS["elim"],
    "elim-vector": MethodVariant("ELIM, vector shift",
                                 {"train.method": "elim", "matching.shift": "vector"}),
}
#: Suffix of a row measured with test-time identity normalisation.
TTN = "+ttn"
#: Rows the others are compared with (paired differences).
_REFERENCES = ("baseline", "elim")
DEFAULT_STRENGTHS = (0.0, 0.25, 0.5, 0.75, 1.0)
#: Data options the study sets by default (40 identities × 4 clips × 8 frames; 2 of 5 tested).
STUDY_DATA = {"n_identities": 40, "clips_per_identity": 4, "frames_per_clip": 8}


def shift_rows(methods: Sequence[str]) -> tuple[list[str], list[str], dict[str, str]]:
    """(rows, trained methods, labels) of ``methods`` (names of :data:`SHIFT_METHODS`, each
    optionally with the :data:`TTN` suffix); ElimError naming the choices otherwise."""
    rows = list(dict.fromkeys(methods))
    trained, labels = [], {}
    for row in rows:
        base = row.removesuffix(TTN)
        if base not in SHIFT_METHODS:
            choices = ", ".join([*SHIFT_METHODS, *(m + TTN for m in SHIFT_METHODS)])
            raise ElimError(f"unknown method {row!r}; choose from {choices}")
        trained.append(base)
        label = SHIFT_METHODS[base].label
        labels[row] = f"{label} + test-time norm." if row != base else label
    if not rows:
        raise ElimError("--methods is empty")
    return rows, list(dict.fromkeys(trained)), labels


def _value(record: dict[str, Any], ttn: bool, metric: str) -> float:
    scores = record["ttn" if ttn else "plain"]
    if metric in ("ccc_mean", "ccc_v", "ccc_a"):
        return float(scores["test"][metric])
    if metric == "spread":
        return float(scores["consistency"]["spread"])
    return float(scores[metric])


def summarise_shift(results: dict[tuple[str, float, int], dict[str, Any]], rows: Sequence[str],
                    labels: dict[str, str], strengths: Sequence[float], seeds: Sequence[int]
                    ) -> dict[str, Any]:
    """``{methods, labels, strengths, seeds, summary, paired}`` of the per-fit ``results``
    (keyed by (trained method, strength, seed)).

    ``summary[row]`` is a list over strengths of ``{"strength", <metric>: {"mean", "std", "n"}}``
    for every metric of :data:`METRICS`; ``paired[row][reference][metric]`` a list over strengths
    of :func:`elim.analysis.paired.paired` (row − reference, per seed; metrics
    :data:`PAIRED_METRICS`) for the references
    ``baseline`` and ``elim`` that are rows (an extension is compared with both; ELIM with the
    baseline).
    """
    def measures(row: str, strength: float, seed: int) -> dict[str, float]:
        ttn = row.endswith(TTN)
        record = results[(row[: -len(TTN)] if ttn else row, strength, seed)]
        return {m: _value(record, ttn, m) for m in METRICS}

    def values(row: str, strength: float, metric: str) -> list[float]:
        return [measures(row, strength, seed)[metric] for seed in seeds]

    summary = {row: [{"strength": s, **aggregate([measures(row, s, seed) for seed in seeds])}
                     for s in strengths] for row in rows}
    compared: dict[str, Any] = {}
    for row in rows:
        refs = [r for r in _REFERENCES if r in rows and r != row
                and not (row == "baseline" and r == "elim")]
        if refs:
            compared[row] = {ref: {m: [paired(values(row, s, m), values(ref, s, m))
                                       for s in strengths] for m in PAIRED_METRICS}
                             for ref in refs}
    return {"methods": list(rows), "labels": dict(labels), "strengths": list(strengths),
            "seeds": list(seeds), "summary": summary, "paired": compared}


def _cell(agg: dict[str, float]) -> str:
    return f"{agg['mean']:.3f} ± {agg['std']:.3f}"


def shift_markdown(result: dict[str, Any]) -> str:
    """The tables of ``shift.md``: each measure per row and strength, then the paired
    differences (mean [95 % interval] over seeds)."""
    strengths, rows, labels = result["strengths"], result["methods"], result["labels"]
    knob = result.get("knob", "shift")
    columns = ["method", *(f"{knob} {s:g}" for s in strengths)]
    note = (f"{result['train_identities']} fixed training identities, "
            f"{result['test_identities']} fixed unseen test identities ({result['test_faces']} "
            f"faces); probe faces: the same {result['probe_labels']} labels shown by every test "
            f"identity. Mean ± std (ddof = 1) over seeds {result['seeds']}.")
    lines = results_page(f"Identity-shift benchmark: {knob} strength", note + " " +
                         METRICS["ccc_mean"][0] + ":", columns,
                         [[labels[r], *(_cell(c["ccc_mean"]) for c in result["summary"][r])]
                          for r in rows])
    for metric in ("ccc_v", "ccc_a", "spread", "probe_ccc", "identity_probe"):
        label, lower = METRICS[metric]
        lines += ["", f"{label} ({'lower' if lower else 'higher'} is better):", "",
                  "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join([labels[r], *(_cell(c[metric]) for c in
                                                   result["summary"][r])]) + " |" for r in rows]
    for metric in PAIRED_METRICS:
        pairs = [(row, ref) for row, by in result["paired"].items() for ref in by]
        if not pairs:
            continue
        lines += ["", (f"Paired differences, {METRICS[metric][0]}: mean [95 % interval] over "
                       "the same seeds (wins = seeds where the row is higher):"), "",
                  "| " + " | ".join(["difference", *columns[1:]]) + " |",
                  "|" + "---|" * len(columns)]
        for row, ref in pairs:
            cells = [f"{format_paired(p)} ({p['wins']}/{p['n']})"
                     for p in result["paired"][row][ref][metric]]
            lines.append(f"| {labels[row]} − {labels[ref]} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_shift(result: dict[str, Any], path: str | Path) -> Path:
    """Test CCC, CCC on the probe faces and consistency spread against the strength, one line
    per row (PNG + SVG); error bars: 95 % t-interval of the mean over seeds (rows drawn a
    little apart along x so that the bars stay readable)."""
    from scipy.stats import t

    from elim.analysis import plots

    panels = ("ccc_mean", "probe_ccc", "spread")
    plt = plots._plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(15, 4.2))
    x = result["strengths"]
    step = (max(x) - min(x) or 1.0) * 0.008
    rows = result["methods"]
    for r, row in enumerate(rows):
        xs = [v + (r - (len(rows) - 1) / 2) * step for v in x]
        for ax, metric in zip(axes, panels):
            cells = [c[metric] for c in result["summary"][row]]
            half = [t.ppf(0.975, c["n"] - 1) * c["std"] / c["n"] ** 0.5 if c["n"] > 1 else 0.0
                    for c in cells]
            ax.errorbar(xs, [c["mean"] for c in cells], yerr=half, marker="o", capsize=3,
                        label=result["labels"][row],
                        linestyle="--" if row.endswith(TTN) else "-")
    knob = result.get("knob", "shift")
    titles = (f"{result['test_identities']} unseen identities",
              "probe faces: the same labels for all",
              "same labels, different identities")
    for ax, metric, title in zip(axes, panels, titles):
        label, lower = METRICS[metric]
        ax.set_xlabel(f"identity {knob} strength")
        ax.set_ylabel(f"{label} ({'lower' if lower else 'higher'} = better)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    n = len(result["seeds"])
    fig.suptitle(f"Identity-{knob} benchmark (synthetic faces), {n} seed{'s' if n != 1 else ''}",
                 y=1.02)
    return plots._save(fig, path)
