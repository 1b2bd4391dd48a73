"""Report building blocks: result-folder detection and the Markdown → HTML converter."""

from __future__ import annotations

import numpy as np
import pytest

from elim.analysis.markdown import to_html
from elim.analysis.report import detect
from elim.errors import DataError


def _png(path):
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.imsave(path, np.random.default_rng(0).random((8, 8, 3)))
    return path


def test_markdown_tables_code_lists_and_embedded_images(tmp_path):
    _png(tmp_path / "fig.png")
    md = ("# Title\n\nSome `code` and **bold** <b>.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
          "- one\n- two\n\n```json\n{\"x\": 1}\n```\n\n![a figure](fig.png)\n")
    html = to_html(md, tmp_path)
    assert "<h1>Title</h1>" in html and "<code>code</code>" in html
    assert "<strong>bold</strong>" in html and "&lt;b&gt;" in html
    assert "<th>a</th>" in html and "<td>2</td>" in html
    assert "<li>two</li>" in html and "{&quot;x&quot;: 1}" in html
    assert 'src="data:image/png;base64,' in html and "fig.png" not in html.split("src=")[1][:60]


def test_detect_kinds(tmp_path):
    for marker, kind in (("ablation.json", "ablation"), ("study.json", "study"),
                         ("cv.json", "cv"), ("invariance.json", "invariance"),
                         ("model.safetensors", "run")):
        d = tmp_path / kind
        d.mkdir()
        (d / marker).write_text("{}")
        assert detect(d) == kind
        if marker.endswith(".json"):
            assert detect(d / marker) == kind
    figs = tmp_path / "figs"
    figs.mkdir()
    _png(figs / "a.png")
    assert detect(figs) == "figures"
    with pytest.raises(DataError, match="not a run directory"):
        detect(tmp_path)
    with pytest.raises(DataError, match="no such folder"):
        detect(tmp_path / "missing")
