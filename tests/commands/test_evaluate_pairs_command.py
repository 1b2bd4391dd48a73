"""``elim evaluate-pairs``: per-person orderings and CCC of a run on labelled photos."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from elim.cli import main
from elim.deps import cv2


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Drawn faces of 4 people × 2 labels as PNGs, a blank photo, and their CSV."""
    from elim.benchmarks.predict import synthetic_face

    root = tmp_path_factory.mktemp("pairs")
    rows = []
    for person in range(4):
        for k, label in enumerate(("calm", "happy")):
            rel = f"{label}/{person}.png"
            (root / label).mkdir(exist_ok=True)
            face = synthetic_face(160, seed=2 * person + k)
            assert cv2.imwrite(str(root / rel), cv2.cvtColor(face, cv2.COLOR_RGB2BGR))
            rows.append({"path": rel, "identity": f"p{person}", "label": label,
                         "valence": -0.5 + k, "arousal": 0.1 * person})
    assert cv2.imwrite(str(root / "blank.png"), np.full((64, 64, 3), 128, np.uint8))
    rows.append({"path": "blank.png", "identity": "p0", "label": "calm", "valence": "",
                 "arousal": ""})
    csv = root / "labels.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    return csv


def test_orderings_and_ccc_follow_the_predictions_of_predict(photos, runs, capsys):
    from elim.inference.predictor import load

    run = runs["elim"]
    assert main(["evaluate-pairs", str(run), str(photos), "--order", "happy>calm",
                 "--order", "calm<*:arousal", "--json"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert "blank.png: no_face" in captured.err
    assert result["photos"] == 9 and result["faces"] == 8
    assert [m["status"] for m in result["missing"]] == ["no_face"]
    # what predict gives, person by person
    table = load(run).predict(sorted(str(p) for p in photos.parent.glob("*/*.png")))
    table["label"] = [p.split("/")[-2] for p in table["source"]]
    table["identity"] = ["p" + p.split("/")[-1][0] for p in table["source"]]
    wide = table.pivot(index="identity", columns="label", values="valence")
    want = int((wide["happy"] > wide["calm"]).sum())
    valence = result["orderings"][0]
    assert valence == {"ordering": "happy > calm on valence", "people": 4, "respected": want,
                       "fraction": round(want / 4, 4)}
    assert result["orderings"][1]["ordering"] == "* > calm on arousal"  # * = every other label
    per_person = pd.DataFrame(result["per_person"])
    assert len(per_person) == 8 and set(per_person["identity"]) == {"p0", "p1", "p2", "p3"}
    assert result["n_metrics"] == 8 and -1 <= result["metrics"]["ccc_v"] <= 1


def test_table_output_per_person_csv_and_refusals(photos, runs, tmp_path, capsys):
    out = tmp_path / "people.csv"
    assert main(["evaluate-pairs", str(runs["elim"]), str(photos), "--order", "happy>calm",
                 "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| happy > calm on valence | 4 |" in text and "ccc_v" in text
    assert list(pd.read_csv(out).columns) == ["identity", "ordering", "higher", "lower",
                                              "respected"]
    assert main(["evaluate-pairs", str(runs["elim"]), str(photos), "--order", "happy"]) == 2
    assert "expected labels joined by" in capsys.readouterr().err
    bare = tmp_path / "bare.csv"
    pd.read_csv(photos)[["path", "identity", "label"]].to_csv(bare, index=False)
    assert main(["evaluate-pairs", str(runs["elim"]), str(bare)]) == 2
    assert "--order" in capsys.readouterr().err
    assert main(["evaluate-pairs", str(runs["elim"]), str(photos), "--label-column", "mood",
                 "--order", "a>b"]) == 2
    assert "no column mood" in capsys.readouterr().err
