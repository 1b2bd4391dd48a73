"""Report building blocks: result-folder detection, the Markdown → HTML converter, and reports
over hostile folder names, configurations and tables (issue 16)."""

from __future__ import annotations

import base64
import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from elim.analysis.markdown import to_html
from elim.analysis.report import build_report, detect
from elim.errors import DataError


def _png(path, seed=0):
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.imsave(path, np.random.default_rng(seed).random((8, 8, 3)))
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


# ------------------------------------------------------------------ hostile text (issue 16)
_ALLOWED_TAGS = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "h4", "h5",
                 "h6", "p", "ul", "li", "table", "thead", "tbody", "tr", "th", "td", "pre",
                 "code", "strong", "figure", "img", "figcaption", "details", "summary"}


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _tags(text: str) -> list[tuple[str, dict]]:
    parser = _Tags()
    parser.feed(text)
    return parser.tags


def _assert_inert(page: str, n_images: int) -> None:
    """Only the converter's own tags, no attribute but image data and the page's own."""
    tags = _tags(page)
    assert {t for t, _ in tags} <= _ALLOWED_TAGS
    assert "<script" not in page.lower()
    for tag, attrs in tags:
        allowed = {"html": {"lang"}, "meta": {"charset"}, "img": {"alt", "src"}}.get(tag, set())
        assert set(attrs) <= allowed, (tag, attrs)
    srcs = [a["src"] for t, a in tags if t == "img"]
    assert len(srcs) == n_images and all(s.startswith("data:image/png;base64,") for s in srcs)


EVIL = "<script>alert(1)</script>"


def _hostile_folders(tmp_path: Path) -> tuple[list[Path], bytes]:
    secret = _png(tmp_path / "secret.png", seed=1)
    run = tmp_path / "run <img src=x onerror=alert(2)>"
    run.mkdir()
    (run / "model.safetensors").write_bytes(b"")
    (run / "config.json").write_text(json.dumps({
        "train": {"method": EVIL},
        "data": {"dataset": EVIL, "root": f"</title>{EVIL}"},
        "environment": {f"<b>{EVIL}": f"{EVIL} | cell\n![leak](../secret.png)\n<details>"},
    }))
    (run / "metrics.json").write_text(json.dumps({
        "val": {"ccc_mean": 0.5}, "split_rule": f"{EVIL}\n<summary>{EVIL}</summary>",
        "sizes": {"train": EVIL},
    }))
    figs = tmp_path / "figs(1) <i>x<i>"
    figs.mkdir()
    _png(figs / "<img src=x onerror=alert(3)>.png")
    cv = tmp_path / f"cv {EVIL.replace('/', '')}"
    cv.mkdir()
    (cv / "cv.json").write_text(json.dumps({"environment": {"k": EVIL},
                                            "settings": {EVIL: "</code></pre>" + EVIL}}))
    (cv / "cv.md").write_text(
        f"# Cross-validation {EVIL}\n\n<details onclick=alert(4)>\n<summary>{EVIL}</summary>\n"
        f"</details>\n<summary onclick=x>y</summary>\n\n| a {EVIL} | b |\n|---|---|\n"
        f"| {EVIL} | <img src=x onerror=alert(5)> |\n\n![leak](../secret.png)\n"
        f"![leak]({secret})\n\n```\n{EVIL}\n```\n")
    return [run, figs, cv], secret.read_bytes()


def test_hostile_strings_everywhere_stay_text(tmp_path):
    paths, secret = _hostile_folders(tmp_path)
    out, _ = build_report(paths, tmp_path / "rep" / "r.html", title=f"</title>{EVIL}")
    page = out.read_text()
    _assert_inert(page, n_images=1)  # the one figure of the figures folder
    assert "<title>&lt;/title&gt;&lt;script&gt;" in page
    assert "<h1>&lt;/title&gt;&lt;script&gt;alert(1)&lt;/script&gt;</h1>" in page
    assert base64.b64encode(secret).decode() not in page  # named, never embedded
    assert "figure not embedded: leak" in page
    assert "<summary>&lt;script&gt;alert(1)&lt;/script&gt;</summary>" in page
    assert "<td>&lt;script&gt;alert(1)&lt;/script&gt; | cell ![leak](../secret.png) " \
           "&lt;details&gt;</td>" in page  # a bar and newlines inside a cell stay in it


def test_markdown_html_is_escaped_even_when_written_by_hand(tmp_path):
    md = (f"<details>\n<summary>{EVIL}</summary>\n</details>\n<details open onclick=x>\n"
          f"<summary onclick=x>a</summary>\n# {EVIL}\n- {EVIL}\n| {EVIL} |\n|---|\n| x |\n")
    _assert_inert(to_html(md, tmp_path), n_images=0)


def test_figures_in_folders_with_parentheses_and_spaces_are_embedded(tmp_path):
    figs = tmp_path / "figs(1) and [more]"
    figs.mkdir()
    _png(figs / "a b (2).png")
    out, md = build_report([figs], tmp_path / "out dir (x)" / "report.html")
    page = out.read_text()
    _assert_inert(page, n_images=1)
    assert "![" not in page and "a b (2)" in page  # the caption
    text = md.read_text()
    assert "![a b (2)](../figs%281%29%20and%20%5Bmore%5D/a%20b%20%282%29.png)" in text
    # hand-written Markdown with raw parentheses and spaces in the path works too
    raw = to_html("![fig](figs(1) and [more]/a b (2).png)\n", tmp_path)
    assert raw.count('src="data:image/png;base64,') == 1
    escaped_alt = to_html("![a \\[1\\] b](<figs(1) and [more]/a b (2).png>)\n", tmp_path)
    assert 'alt="a [1] b"' in escaped_alt


def test_missing_or_non_image_figures_are_named_not_embedded(tmp_path):
    (tmp_path / "notes.txt").write_text("private")
    page = to_html("![a](gone.png)\n\n![b](notes.txt)\n", tmp_path)
    assert "missing figure: a" in page and "figure not embedded: b" in page
    assert "<img" not in page
