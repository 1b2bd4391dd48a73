"""Figures: VA plane (paper Fig. 3), t-SNE (Fig. 4), ID-shift matrix (Fig. 5), identity study
(Fig. 6) and training curves. Every function writes a PNG (and an SVG beside it) and returns the
PNG path. Matplotlib runs on the non-interactive Agg backend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


#: PNG resolution unless matplotlib's ``savefig.dpi`` is set (e.g. ``rc_context``; ``elim plot --dpi``)
DEFAULT_DPI = 120


def _save(fig, path: str | Path, svg: bool = True) -> Path:
    path = Path(path).with_suffix(".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    dpi = _plt().rcParams["savefig.dpi"]
    fig.savefig(path, dpi=DEFAULT_DPI if dpi == "figure" else dpi, bbox_inches="tight")
    if svg:
        fig.savefig(path.with_suffix(".svg"), bbox_inches="tight")
    _plt().close(fig)
    return path


def _va_axes(ax, title: str = "") -> None:
    circle = _plt().Circle((0, 0), 1.0, fill=False, color="0.5", lw=1, ls="--")
    ax.add_patch(circle)
    ax.axhline(0, color="0.8", lw=0.8)
    ax.axvline(0, color="0.8", lw=0.8)
    ax.set_xlim(-1.1, 1.1)
    ax.set_ylim(-1.1, 1.1)
    ax.set_aspect("equal")
    ax.set_xlabel("valence")
    ax.set_ylabel("arousal")
    if title:
        ax.set_title(title)


def va_plane(
    predictions: Mapping[str, np.ndarray],
    target: np.ndarray,
    identity: Sequence[str],
    path: str | Path,
    title: str = "Same label, different identities",
) -> Path:
    """Fig. 3: predictions (one panel per model) of same-label samples of several identities.

    ``predictions`` maps a model name to (N, 2) VA predictions; ``target`` holds the (N, 2) labels
    (ground truth drawn as black stars); points are coloured by identity.
    """
    plt = _plt()
    target = np.asarray(target, dtype=float)
    ids = np.asarray(identity).astype(str)
    names = sorted(set(ids))
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    fig, axes = plt.subplots(1, len(predictions), figsize=(4.2 * len(predictions), 4.2), squeeze=False)
    for col, (ax, (model, pred)) in enumerate(zip(axes[0], predictions.items())):
        pred = np.asarray(pred, dtype=float)
        _va_axes(ax, f"{model}")
        if col:
            ax.set_ylabel("")
        for k, name in enumerate(names):
            sel = ids == name
            ax.scatter(pred[sel, 0], pred[sel, 1], s=28, color=cmap(k % cmap.N), label=name)
        ax.scatter(target[:, 0], target[:, 1], marker="*", s=180, color="k", label="ground truth")
    handles, labels = axes[0][0].get_legend_handles_labels()
    uniq = dict(zip(labels, handles))
    fig.legend(uniq.values(), uniq.keys(), loc="center right", fontsize=7, title="identity")
    fig.suptitle(title)
    fig.subplots_adjust(right=0.85)
    return _save(fig, path)


def tsne(
    features: Mapping[str, np.ndarray],
    identity: Sequence[str],
    arousal: np.ndarray,
    path: str | Path,
    seed: int = 0,
    perplexity: float = 30.0,
) -> Path:
    """Fig. 4: t-SNE of features, coloured by identity (top row) and by arousal (bottom row),
    one column per model (e.g. baseline and ELIM side by side)."""
    from threadpoolctl import threadpool_limits

    from elim.deps import TSNE

    plt = _plt()
    ids = np.asarray(identity).astype(str)
    names, codes = np.unique(ids, return_inverse=True)
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    fig, axes = plt.subplots(2, len(features), figsize=(4.6 * len(features) + 1.6, 8.6),
                             squeeze=False, layout="constrained")
    sc = None
    for col, (model, z) in enumerate(features.items()):
        z = np.asarray(z, dtype=np.float64)
        perp = min(perplexity, max(2.0, (len(z) - 1) / 3))
        # One OpenMP thread: with torch loaded, sklearn's threaded Barnes-Hut gradient contends
        # with torch's pool and runs orders of magnitude slower on small machines.
        with threadpool_limits(limits=1, user_api="openmp"):
            emb = TSNE(n_components=2, perplexity=perp, random_state=seed,
                       init="pca").fit_transform(z)
        for k, name in enumerate(names):
            sel = codes == k
            axes[0][col].scatter(emb[sel, 0], emb[sel, 1], color=cmap(k % cmap.N), s=10,
                                 label=name)
        axes[0][col].set_title(f"{model}: coloured by identity")
        sc = axes[1][col].scatter(emb[:, 0], emb[:, 1], c=arousal, cmap="coolwarm", s=10,
                                  vmin=-1, vmax=1)
        axes[1][col].set_title(f"{model}: coloured by arousal")
        for ax in axes[:, col]:
            ax.set_xlabel("t-SNE 1")
            ax.set_ylabel("t-SNE 2")
    if len(names) <= 20:
        axes[0][-1].legend(title="identity", fontsize=6, title_fontsize=7, loc="center left",
                           bbox_to_anchor=(1.02, 0.5))
    fig.colorbar(sc, ax=axes[1, :], label="arousal", shrink=0.9)
    return _save(fig, path)


def id_shift_matrix(
    mu: np.ndarray,
    reference: str,
    targets: Sequence[str],
    path: str | Path,
    sample_labels: Sequence[str] | None = None,
    cell_text: np.ndarray | None = None,
    note: str = "",
) -> Path:
    """Fig. 5: ID shift μ (Eq. 3) of target samples (columns) against one reference identity.

    ``mu`` is (n_targets, m) — one row per target identity, one value per target sample
    (NaN where an identity has fewer samples). ``cell_text`` (same shape, optional) is written
    in the cells (e.g. each target sample's VA label); ``note`` goes under the title.
    """
    plt = _plt()
    mu = np.atleast_2d(np.asarray(mu, dtype=float))
    cell_w = 0.62 if cell_text is not None else 0.5
    fig, ax = plt.subplots(figsize=(2.4 + cell_w * mu.shape[1], 1.6 + 0.5 * mu.shape[0]))
    im = ax.imshow(np.ma.masked_invalid(mu), cmap="viridis", aspect="auto")
    ax.set_yticks(range(len(targets)), [str(t) for t in targets])
    ax.set_xticks(range(mu.shape[1]), sample_labels or [str(j) for j in range(mu.shape[1])])
    if cell_text is not None:
        finite = mu[np.isfinite(mu)]
        mid = float(finite.min() + finite.max()) / 2 if finite.size else 0.0
        for (i, j), text in np.ndenumerate(np.asarray(cell_text, dtype=object)):
            if text and np.isfinite(mu[i, j]):
                ax.text(j, i, str(text), ha="center", va="center", fontsize=5.5,
                        color="k" if mu[i, j] > mid else "w")
    ax.set_xlabel("target sample")
    ax.set_ylabel("target identity")
    ax.set_title(f"ID shift μ against reference {reference}" + (f"\n{note}" if note else ""),
                 fontsize=9)
    fig.colorbar(im, ax=ax, label="μ (plan-weighted cosine cost)")
    return _save(fig, path)


def identity_study(
    fractions: Sequence[float],
    scores: Mapping[str, Sequence[float]],
    path: str | Path,
    errors: Mapping[str, Sequence[float]] | None = None,
    metric: str = "CCC (mean)",
    n_identities: Sequence[int] | None = None,
) -> Path:
    """Fig. 6: held-out score against the number (fraction) of training identities per method.

    With ``n_identities`` (one count per fraction) the ticks read "count (percent)".
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.8))
    x = 100 * np.asarray(fractions, dtype=float)
    for name, ys in scores.items():
        err = None if errors is None else errors.get(name)
        ax.errorbar(x, ys, yerr=err, marker="o", capsize=3, label=name)
    if n_identities is not None:
        ax.set_xticks(x, [f"{n}\n({p:g}%)" for n, p in zip(n_identities, x)])
        ax.set_xlabel("training identities (share of the training pool)")
    else:
        ax.set_xlabel("training identities used (%)")
    ax.set_ylabel(metric)
    ax.set_title("Effect of the number of training identities")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def curves(history: Mapping[str, Sequence[float]], path: str | Path, x_label: str = "epoch") -> Path:
    """Training curves: one panel per series (e.g. ``train/loss``, ``val/ccc_mean``)."""
    return compare_curves({"": history}, path, x_label)


def compare_curves(
    histories: Mapping[str, Mapping[str, Sequence[float]]],
    path: str | Path,
    x_label: str = "epoch",
    title: str = "",
) -> Path:
    """Training curves of several runs (name → series → values per epoch): one panel per series,
    one line per run (legend when the runs are named). Series are matched by name."""
    from matplotlib.ticker import MaxNLocator

    plt = _plt()
    series = list(dict.fromkeys(k for h in histories.values() for k in h))
    series.sort(key=lambda k: not k.startswith("train/"))  # training panels first (stable)
    n = max(1, len(series))
    cols = min(n, 3)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows), squeeze=False,
                             layout="constrained")
    colours = {run: f"C{i}" for i, run in enumerate(histories)}
    for ax, name in zip(axes.flat, series):
        for run, history in histories.items():
            if name not in history:
                continue
            ys = np.asarray(history[name], dtype=float)
            ax.plot(np.arange(1, len(ys) + 1), ys, marker="." if len(ys) <= 25 else None,
                    color=colours[run], label=run or None)
        ax.set_title(name)
        ax.set_xlabel(x_label)
        ax.set_ylabel(name.split("/")[-1])
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if any(histories):
            ax.legend(fontsize=7)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    return _save(fig, path)
