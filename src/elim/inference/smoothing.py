"""Temporal smoothing of per-frame valence/arousal along each face track of a video.

Specs (``--smooth``):

- ``ema:ALPHA`` — exponential moving average ``s_t = α·x_t + (1 − α)·s_{t−1}``, ``s_0 = x_0``;
  causal, so it can be applied live. Its effective window is about ``2/α − 1`` processed frames.
- ``savgol:WINDOW[:ORDER]`` — Savitzky–Golay filter (``scipy.signal.savgol_filter``): a
  polynomial of degree ORDER (default 2) fitted by least squares over a centred window of WINDOW
  processed frames (odd; an even value is raised by one). Tracks shorter than the window use the
  largest odd window that fits (and are left as they are below ORDER + 2 frames).

The window counts processed frames of one track (after ``--every``), not seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from elim.errors import ElimError

TARGETS = ("valence", "arousal")


@dataclass(frozen=True)
class Smoothing:
    kind: str  # "ema" | "savgol"
    alpha: float = 0.3
    window: int = 9
    order: int = 2

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Smooth one 1-D series (one track, in frame order)."""
        x = np.asarray(x, dtype=np.float64)
        if len(x) == 0:
            return x
        if self.kind == "ema":
            out = np.empty_like(x)
            out[0] = x[0]
            for t in range(1, len(x)):
                out[t] = self.alpha * x[t] + (1.0 - self.alpha) * out[t - 1]
            return out
        from scipy.signal import savgol_filter

        window = min(self.window, len(x) if len(x) % 2 else len(x) - 1)
        if window <= self.order:
            return x.copy()
        return savgol_filter(x, window, self.order, mode="interp")


def parse_smoothing(spec: str | Smoothing | None) -> Smoothing | None:
    """``None``/``"none"``, ``"ema:0.3"`` or ``"savgol:9"`` / ``"savgol:9:3"`` → Smoothing."""
    if spec is None or isinstance(spec, Smoothing):
        return spec
    text = str(spec).strip().lower()
    if text in ("", "none", "off"):
        return None
    kind, _, rest = text.partition(":")
    try:
        if kind == "ema":
            alpha = float(rest) if rest else 0.3
            if not 0.0 < alpha <= 1.0:
                raise ValueError
            return Smoothing("ema", alpha=alpha)
        if kind == "savgol":
            parts = [int(p) for p in rest.split(":")] if rest else [9]
            window = parts[0] + (1 - parts[0] % 2)
            order = parts[1] if len(parts) > 1 else 2
            if len(parts) > 2 or order < 0 or window <= order:
                raise ValueError
            return Smoothing("savgol", window=window, order=order)
    except ValueError:
        pass
    raise ElimError(
        f"bad smoothing {spec!r}; use ema:ALPHA with 0 < ALPHA <= 1 (e.g. ema:0.3) or "
        "savgol:WINDOW[:ORDER] with WINDOW > ORDER (e.g. savgol:9)"
    )


def smooth_table(table: pd.DataFrame, spec: str | Smoothing | None) -> pd.DataFrame:
    """Smooth valence/arousal per (source, face track) in frame order.

    The unsmoothed values are kept in ``valence_raw`` / ``arousal_raw``. Rows without a face
    (``status != "ok"``) are left untouched.
    """
    smoothing = parse_smoothing(spec)
    if smoothing is None or table.empty:
        return table
    table = table.copy()
    for name in TARGETS:
        table[f"{name}_raw"] = table[name]
    ok = table["status"].eq("ok") & table["face"].notna()
    for _, group in table[ok].sort_values("frame").groupby(["source", "face"], sort=False):
        for name in TARGETS:
            table.loc[group.index, name] = smoothing(group[name].to_numpy())
    return table
