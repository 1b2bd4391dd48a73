"""Test-time identity normalisation (an extension of ELIM; off by default).

The paper infers with f_θ(f_φ(x)) alone (Sec. 5.1), although L_main trains f_θ on the
identity-normalised features Ẑ of Eq. 4. When several faces of one person are available at
inference — a video's face track, a person's photos (a group or identity column) — they can be
normalised the way training normalises a target identity: with Eqs. 2–4 against reference
identities, here the :class:`elim.matching.ReferenceBank` of k training faces per training
identity that :func:`elim.training.fit` saves in the run (``reference_bank.safetensors``).

For one person's faces Z (m × d) and every bank identity r as the reference, the run's own
matching layer (masses, cost, solver, μ or δ^e, Eq. 4; nothing sampled) gives Ẑ_r, and the
prediction is the mean over the references of f_θ(Ẑ_r): the expectation of the training-time
prediction over the random reference e₁ that Algorithm 1 draws each step (with the linear head
of Eq. 5 this equals f_θ of the mean Ẑ_r). The faces of a person change the prediction only
through Eqs. 3–4: f_φ and f_θ are untouched, and other people's faces play no part.

:class:`IdentityNormaliser` does it on feature arrays (``predict``; ``normalise`` for the mean Ẑ,
``normalise_and_predict`` for both at once) and on the tables of
``elim predict`` with feature columns (``predict_table``); ``IdentityNormaliser.from_run`` loads
the head, the matching settings and the bank of a run directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

import numpy as np
import pandas as pd
import torch
from torch import nn

if TYPE_CHECKING:
    from elim.inference.predictor import ElimPredictor

from elim.config import config_from_run
from elim.errors import ElimError
from elim.inference.table import feature_columns
from elim.matching import IdentityMatching, ReferenceBank
from elim.runs import CONFIG
from elim.runs.layout import REFERENCE_BANK

__all__ = ["GROUPINGS", "Grouping", "IdentityNormaliser", "person_keys"]

#: Columns a prediction table gets when its valence/arousal are replaced.
PLAIN_COLUMNS = ("valence_plain", "arousal_plain")

#: Who is one person in a prediction table (``elim predict --identity-norm``): a video's face
#: ``track`` (its ``source`` and ``face``), every face of one ``input`` (a photo or a video of
#: one person), every face under one ``folder`` (a folder of one person's photos).
Grouping = Literal["track", "input", "folder"]
GROUPINGS: tuple[str, ...] = get_args(Grouping)


def person_keys(table: pd.DataFrame, by: str) -> np.ndarray:
    """One key per row of an ``elim predict`` table: equal keys are one person.

    ``by`` is a :data:`Grouping` or the name of a column of the table that names the person
    (across inputs)."""
    if by not in GROUPINGS:
        if by not in table.columns:
            raise ElimError(f"the table has no column {by!r} to group people by; use one of "
                            f"{', '.join(GROUPINGS)} or a column of the table")
        return table[by].astype(str).to_numpy()
    source = table["source"].astype(str)
    if by == "track":
        return (source + "\x1f" + table["face"].astype(str)).to_numpy()
    if by == "input":
        return source.to_numpy()
    return np.array([str(Path(s).parent) for s in source], dtype=object)


class IdentityNormaliser:
    """Predict from features with Eqs. 3–4 against a reference bank (module docstring).

    Parameters
    ----------
    head : nn.Module
        f_θ of the run (Eq. 5).
    matching : IdentityMatching
        The run's matching layer (its masses, cost, solver, ``shift``; sampling is not used).
    bank : ReferenceBank
        The references (k features per training identity).
    max_pairs : int
        Budget of one solver call in (face slot, reference) pairs: people are processed in
        chunks of G with G · R · (their most faces) ≤ ``max_pairs`` (a person alone otherwise).
    """

    def __init__(self, head: nn.Module, matching: IdentityMatching, bank: ReferenceBank,
                 max_pairs: int = 1 << 18) -> None:
        if len(bank) == 0:
            raise ElimError("the reference bank is empty")
        self.head = head
        self.matching = matching
        self.bank = bank
        self.max_pairs = max(1, int(max_pairs))

    def _chunks(self, counts: np.ndarray) -> list[list[int]]:
        """People (indices into ``counts``) in order, grouped to fit :attr:`max_pairs`."""
        chunks: list[list[int]] = []
        width = 0
        for p, n in enumerate(counts.tolist()):
            grown = max(width, n)
            if chunks and (len(chunks[-1]) + 1) * len(self.bank) * grown <= self.max_pairs:
                chunks[-1].append(p)
                width = grown
            else:
                chunks.append([p])
                width = n
        return chunks

    @classmethod
    def from_run(cls, run_dir: str | Path, device: str = "cpu") -> IdentityNormaliser:
        """The head, matching settings (``config.json``) and bank of a run directory."""
        from elim.inference.predictor import load

        return cls.from_predictor(load(run_dir, device=device))

    @classmethod
    def from_predictor(cls, predictor: ElimPredictor) -> IdentityNormaliser:
        """The same for a loaded run (:func:`elim.load`): its head, its matching settings and
        the bank saved beside its weights, without loading the model again."""
        if predictor.run_dir is None:
            raise ElimError("the predictor was not loaded from a run directory; the reference "
                            "bank lives in one (elim.load(RUN_DIR))")
        config = config_from_run(predictor.config, source=str(predictor.run_dir / CONFIG))
        return cls(predictor.model.head, config.matching.build(),
                   ReferenceBank.load(predictor.run_dir / REFERENCE_BANK))

    def predict(self, features: np.ndarray, groups: np.ndarray) -> np.ndarray:
        """(N, 2) float64 predictions: the mean over the references of f_θ(Ẑ_r).

        Parameters
        ----------
        features : ndarray
            (N, d) features z = f_φ(x).
        groups : ndarray
            (N,) person / track of every face (any values; equal values = one person).
        """
        return self._apply(features, groups, lambda z_hat: self.head(z_hat).float().mean(dim=1))

    def normalise(self, features: np.ndarray, groups: np.ndarray) -> np.ndarray:
        """(N, d) float64 features: the mean over the references of Ẑ_r (what f_θ reads when it
        is linear, as Eq. 5's head)."""
        return self._apply(features, groups, lambda z_hat: z_hat.mean(dim=1))

    def normalise_and_predict(self, features: np.ndarray, groups: np.ndarray
                              ) -> tuple[np.ndarray, np.ndarray]:
        """``(normalise(...), predict(...))`` with one pass of the solver: the (N, d) mean Ẑ
        and the (N, 2) mean f_θ(Ẑ_r), equal to the two calls'."""
        d = int(self.bank.features.shape[2])
        both = self._apply(features, groups, lambda z_hat: torch.cat(
            [z_hat.mean(dim=1).double(), self.head(z_hat).float().mean(dim=1).double()], dim=-1))
        if len(both) == 0:
            return np.zeros((0, d)), np.zeros((0, 2))
        return both[:, :d], both[:, d:]

    @torch.no_grad()
    def _apply(self, features: np.ndarray, groups: np.ndarray, reduce) -> np.ndarray:
        """``reduce(Ẑ (G, R, m, d)) → (G, m, c)`` for every person's faces, back in row order."""
        z = torch.as_tensor(np.array(features, dtype=np.float32))  # a copy: inputs may be read-only
        keys = np.asarray(groups)
        if z.dim() != 2 or len(keys) != len(z):
            raise ElimError(f"features must be (N, d) aligned with groups; got {tuple(z.shape)} "
                            f"and {keys.shape}")
        if z.shape[1] != self.bank.features.shape[2]:
            raise ElimError(f"features have d = {z.shape[1]} but the reference bank holds "
                            f"d = {self.bank.features.shape[2]}: not this run's features")
        if len(z) == 0:
            return np.zeros((0, 2))
        _, person = np.unique(keys.astype(str), return_inverse=True)
        person = person.reshape(-1)
        order = np.argsort(person, kind="stable")
        counts = np.bincount(person)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        device = next(self.head.parameters()).device
        refs, ref_mask = self.bank.features.to(device), self.bank.mask.to(device)
        out: np.ndarray | None = None
        for chunk in self._chunks(counts):
            width = int(counts[chunk].max())
            zt = z.new_zeros(len(chunk), width, z.shape[1])
            mask = torch.zeros(len(chunk), width, dtype=torch.bool)
            rows = []
            for g, p in enumerate(chunk):
                mine = order[starts[p]:starts[p] + counts[p]]
                zt[g, :len(mine)] = z[mine]
                mask[g, :len(mine)] = True
                rows.append(mine)
            normed = self.matching.normalise_to_references(zt.to(device), mask.to(device), refs,
                                                           ref_mask)
            values = reduce(normed.z_hat).double().cpu().numpy()  # (G, m, c)
            if out is None:
                out = np.zeros((len(z), values.shape[-1]))
            for g, mine in enumerate(rows):
                out[mine] = values[g, :len(mine)]
        return out

    def predict_table(self, table: pd.DataFrame, by: str = "track") -> pd.DataFrame:
        """A copy of an ``elim predict`` table (with feature columns ``f0…``) whose valence and
        arousal are identity-normalised per person — ``by`` a :data:`Grouping` (``"track"``:
        the face tracks of videos) or a column naming the person (:func:`person_keys`); the
        plain predictions move to ``valence_plain`` / ``arousal_plain``. Rows without features
        (no face, errors) are left as they are."""
        d = self.bank.features.shape[2]
        cols = feature_columns(d)
        missing = [c for c in (*cols[:1], cols[-1]) if c not in table.columns]
        if missing:
            raise ElimError(f"the table has no column {', '.join(missing)}; predict with "
                            f"features (return_features=True / --features) first")
        groups = person_keys(table, by)
        out = table.copy()
        feats = out[cols].to_numpy(np.float64)
        ok = np.isfinite(feats).all(axis=1)
        out[PLAIN_COLUMNS[0]], out[PLAIN_COLUMNS[1]] = out["valence"], out["arousal"]
        if ok.any():
            va = self.predict(feats[ok], groups[ok])
            out.loc[ok, "valence"], out.loc[ok, "arousal"] = va[:, 0], va[:, 1]
        return out
