"""The Markdown of results pages (:func:`results_page`) and a small Markdown → HTML converter
for the reports this package writes.

It handles exactly what the analysis modules emit: ``#`` headings, paragraphs, ``-`` lists,
pipe tables, fenced code blocks, ``<details>`` blocks passed through, inline ``code`` and
``**bold**``, and images on a line of their own (``![alt](path)``), which are embedded as
base64 data URIs so the HTML file stands alone.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = ["data_uri", "results_page", "to_html"]

_IMAGE = re.compile(r"^!\[(?P<alt>[^\]]*)\]\((?P<src>[^)]+)\)$")
_MIME = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def results_page(title: str, note: str, columns: Sequence[str],
                 rows: Iterable[Sequence[str]]) -> list[str]:
    """Lines of a results page: ``# title``, the ``note`` paragraph, then a pipe table."""
    return [f"# {title}", "", note, "", _row(columns), "|" + "---|" * len(columns),
            *(_row(r) for r in rows)]


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
    return [c.strip() for c in line.strip().strip("|").split("|")]


def to_html(markdown: str, base_dir: str | Path) -> str:
    """HTML body of ``markdown``; image paths are resolved against ``base_dir``."""
    base = Path(base_dir)
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
        elif stripped.startswith(("<details", "</details", "<summary")):
            out.append(stripped)
            i += 1
        elif m := re.match(r"^(#{1,6})\s+(.*)$", stripped):
            n = len(m.group(1))
            out.append(f"<h{n}>{_inline(m.group(2))}</h{n}>")
            i += 1
        elif m := _IMAGE.match(stripped):
            src = base / m.group("src")
            alt = html.escape(m.group("alt"))
            out.append(f'<figure><img alt="{alt}" src="{data_uri(src)}">'
                       f"<figcaption>{alt}</figcaption></figure>")
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
