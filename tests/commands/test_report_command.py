"""``elim report``: one self-contained HTML page and its Markdown twin over results folders."""

from __future__ import annotations

import re

from elim.cli import main


def test_report_over_runs_figures_and_invariance(runs, tmp_path, capsys):
    figs = tmp_path / "figs"
    inv = tmp_path / "inv"
    assert main(["plot", "curves", str(runs["elim"]), "--out", str(figs)]) == 0
    assert main(["analyze", "invariance", str(runs["baseline"]), str(runs["elim"]),
                 "--folds", "2", "--out", str(inv)]) == 0
    out = tmp_path / "rep" / "report.html"
    assert main(["report", str(runs["baseline"]), str(runs["elim"]), str(inv), str(figs),
                 "--out", str(out)]) == 0
    html = out.read_text()
    md = out.with_suffix(".md").read_text()
    # self-contained: every image is a data URI, nothing is fetched
    srcs = re.findall(r'src="([^"]*)"', html)
    assert len(srcs) >= 3 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "<table>" in html and "ccc_mean" in html
    assert "Identity invariance" in html and "torch" in html and "python" in html
    assert "## Run `baseline` (baseline)" in md and "## Run `elim` (ELIM)" in md
    assert "![" in md and "configuration (config.json)" in md


def test_report_rejects_unknown_folders(tmp_path, capsys):
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "r.html")]) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_a_hostile_title_stays_text_in_title_and_heading(tmp_path, capsys):
    import numpy as np
    from matplotlib import pyplot as plt

    figs = tmp_path / "figs(1)"
    figs.mkdir()
    plt.imsave(figs / "a.png", np.zeros((4, 4, 3)))
    out = tmp_path / "r.html"
    title = "</title><script>alert(1)</script>"
    assert main(["report", str(figs), "--out", str(out), "--title", title]) == 0
    html = out.read_text()
    assert "<script" not in html
    escaped = "&lt;/title&gt;&lt;script&gt;alert(1)&lt;/script&gt;"
    assert f"<title>{escaped}</title>" in html and f"<h1>{escaped}</h1>" in html
    assert html.count('src="data:image/png;base64,') == 1 and "![" not in html
