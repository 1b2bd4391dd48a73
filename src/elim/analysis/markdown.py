"""The Markdown of results pages (:func:`results_page`, :func:`image_line`, :func:`one_line`,
:func:`table_cell`) and a small Markdown → HTML converter (:func:`to_html`) for the reports
this package writes.

It handles exactly what the analysis modules emit: ``#`` headings, paragraphs, ``-`` lists,
pipe tables (``\\|`` is a literal bar in a cell), fenced code blocks, ``<details>`` /
``</details>`` lines and ``<summary>text</summary>``, inline ``code`` and ``**bold**``, and
images on a line of their own (``![alt](path)``), which are embedded as base64 data URIs so
the HTML file stands alone.

The HTML is safe whatever the text holds (folder names, configurations and tables come from
files anyone may have written): every piece of text is escaped, no other HTML is passed
through, and only image files (.png, .svg, .jpg) are embedded — with ``embed``, only the
files listed there.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from urllib.parse import quote, unquote

__all__ = ["data_uri", "image_line", "one_line", "results_page", "table_cell", "to_html"]

_IMAGE = re.compile(r"^!\[(?P<alt>(?:\\.|[^\]\\])*)\]\((?P<src><[^<>]+>|.+)\)$")
_SUMMARY = re.compile(r"^<summary>(?P<text>.*)</summary>$")
_CELL_BAR = re.compile(r"(?<!\\)\|")
_MIME = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}


def one_line(value: object) -> str:
    """``value`` as one line of Markdown text: control characters (newlines, escapes) become
    spaces, so that no text taken from a file can start a block (a heading, an image line)."""
    return "".join(c if c.isprintable() else " " for c in str(value))


def table_cell(value: object) -> str:
    """``value`` as the text of a pipe-table cell (:func:`one_line`, with ``|`` escaped)."""
    return one_line(value).replace("|", "\\|")


def image_line(caption: str, path: str) -> str:
    """The Markdown line of an image: the caption's brackets escaped and the (relative,
    ``/``-separated) path percent-encoded, so parentheses and spaces in folder names work in
    :func:`to_html` and in other Markdown viewers."""
    alt = re.sub(r"([\\\[\]])", r"\\\1", one_line(caption))
    return f"![{alt}]({quote(path)})"


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def results_page(title: str, note: str, columns: Sequence[str],
                 rows: Iterable[Sequence[str]]) -> list[str]:
    """Lines of a results page: ``# title``, the ``note`` paragraph, then a pipe table (each
    piece kept on its line: :func:`one_line`, :func:`table_cell`)."""
    return [f"# {one_line(title)}", "", one_line(note), "",
            _row([table_cell(c) for c in columns]), "|" + "---|" * len(columns),
            *(_row([table_cell(c) for c in r]) for r in rows)]


def data_uri(path: str | Path) -> str:
    """``data:<mime>;base64,...`` of an image file."""
    path = Path(path)
    mime = _MIME.get(path.suffix.lower(), "application/octet-stream")
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _inline(text: str) -> str:
    out = []
    for k, part in enumerate(text.split("`")):
        part = html.escape(part)
        if k % 2:
            out.append(f"<code>{part}</code>")
        else:
            out.append(re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", part))
    return "".join(out)


def _cells(line: str) -> list[str]:
    line = line.strip()
    line = line.removeprefix("|")
    line = line[:-1] if line.endswith("|") and not line.endswith("\\|") else line
    return [c.strip().replace("\\|", "|") for c in _CELL_BAR.split(line)]


def _figure(match: re.Match, base: Path, embed: set[Path] | None) -> str:
    """``<figure>`` of an image line; a paragraph saying why when it is not embedded."""
    alt = re.sub(r"\\(.)", r"\1", match.group("alt"))
    src = match.group("src")
    src = unquote(src[1:-1] if src.startswith("<") else src)
    path = (base / src).resolve()
    mime = _MIME.get(path.suffix.lower())
    if mime is None or (embed is not None and path not in embed):
        return f"<p>{html.escape(f'(figure not embedded: {alt} — {src})')}</p>"
    if not path.is_file():
        return f"<p>{html.escape(f'(missing figure: {alt} — {src})')}</p>"
    alt = html.escape(alt)
    return f'<figure><img alt="{alt}" src="{data_uri(path)}"><figcaption>{alt}</figcaption></figure>'


def to_html(markdown: str, base_dir: str | Path, embed: Collection[str | Path] | None = None
            ) -> str:
    """HTML body of ``markdown``.

    Parameters
    ----------
    markdown
        The text (see the module docstring for what is understood).
    base_dir
        Folder against which image paths are resolved.
    embed
        When given, the only image files that may be embedded (others are named, not shown).

    Returns
    -------
    str
        The HTML, every piece of text escaped.
    """
    base = Path(base_dir)
    allowed = None if embed is None else {Path(p).resolve() for p in embed}
    lines = markdown.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if not stripped:
            i += 1
        elif stripped.startswith("```"):
            j = i + 1
            while j < len(lines) and not lines[j].strip().startswith("```"):
                j += 1
            out.append("<pre><code>" + html.escape("\n".join(lines[i + 1:j])) + "</code></pre>")
            i = j + 1
        elif stripped in ("<details>", "</details>"):
            out.append(stripped)
            i += 1
        elif m := _SUMMARY.match(stripped):
            out.append(f"<summary>{_inline(m.group('text'))}</summary>")
            i += 1
        elif m := re.match(r"^(#{1,6})\s+(.*)$", stripped):
            n = len(m.group(1))
            out.append(f"<h{n}>{_inline(m.group(2))}</h{n}>")
            i += 1
        elif m := _IMAGE.match(stripped):
            out.append(_figure(m, base, allowed))
            i += 1
        elif stripped.startswith("|") and i + 1 < len(lines) and set(
                lines[i + 1].strip()) <= set("|-: ") and "-" in lines[i + 1]:
            head = "".join(f"<th>{_inline(c)}</th>" for c in _cells(stripped))
            rows = []
            i += 2
            while i < len(lines) and lines[i].strip().startswith("|"):
                rows.append("<tr>" + "".join(f"<td>{_inline(c)}</td>"
                                             for c in _cells(lines[i])) + "</tr>")
                i += 1
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}"
                       "</tbody></table>")
        elif stripped.startswith("- "):
            items = []
            while i < len(lines) and lines[i].strip().startswith("- "):
                items.append(f"<li>{_inline(lines[i].strip()[2:])}</li>")
                i += 1
            out.append(f"<ul>{''.join(items)}</ul>")
        else:
            para = []
            while i < len(lines) and lines[i].strip() and not re.match(
                    r"^(#|\||- |```|!\[|<details|</details|<summary)", lines[i].strip()):
                para.append(lines[i].strip())
                i += 1
            if not para:  # a line no rule above took (e.g. a lone "|"): show it as text
                para, i = [stripped], i + 1
            out.append(f"<p>{_inline(' '.join(para))}</p>")
    return "\n".join(out)
