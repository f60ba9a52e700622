"""Self-contained HTML: inline CSS, figures as base64 data URIs, a tiny inline script (sortable tables).

Nothing is fetched from the network: the page opens offline. The script also records, once the page has
loaded, how many of its images decoded (`<body data-images-rendered="N/M">`), which the browser test reads.
"""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path
from typing import Iterable, Sequence

from nas._html import SORTABLE_SCRIPT

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 24px auto; max-width: 1300px;
       color: #222; padding: 0 16px; }
h1 { font-size: 1.6em; margin-bottom: 4px; } h2 { font-size: 1.25em; margin-top: 32px;
     border-bottom: 1px solid #ddd; padding-bottom: 4px; }
figure { margin: 12px 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption, .note { color: #555; font-size: 0.9em; max-width: 1100px; }
table { border-collapse: collapse; font-size: 0.88em; margin: 8px 0; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.sortable th { cursor: pointer; background: #f4f4f4; user-select: none; }
table.sortable th[data-dir="asc"]::after { content: " \\25B2"; }
table.sortable th[data-dir="desc"]::after { content: " \\25BC"; }
table.settings th { background: #f4f4f4; width: 14em; }
code { background: #f4f4f4; padding: 0 3px; }
footer { margin-top: 40px; color: #666; font-size: 0.85em; border-top: 1px solid #ddd; padding-top: 8px; }
"""


def write_file(path: Path, data: bytes) -> None:
    """Write-then-rename (never a half-written page), with the usual permissions (umask), unlike mkstemp's 0600."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def page(title: str, body: str) -> str:
    return (
        f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{esc(title)}</title>\n"
        f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<style>{CSS}</style>\n</head>\n"
        f"<body>\n{body}\n<script>{SORTABLE_SCRIPT}</script>\n</body>\n</html>\n"
    )


def figure(filename: str, png: bytes, alt: str, caption: str) -> str:
    """An embedded figure (data URI) that also links to its PNG file next to the page."""
    data = base64.b64encode(png).decode("ascii")
    return (
        f"<figure><a href=\"{esc(filename)}\"><img src=\"data:image/png;base64,{data}\" alt=\"{esc(alt)}\" "
        f"data-file=\"{esc(filename)}\"></a>\n<figcaption>{caption}</figcaption></figure>\n"
    )


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    sortable: bool = False,
    numeric: Sequence[int] = (),
    css_id: str = "",
) -> str:
    """A table; each cell is plain text (escaped) or a tuple (trusted html, sort value)."""
    attributes = (f' id="{esc(css_id)}"' if css_id else "") + (' class="sortable"' if sortable else "")
    out = [
        f"<table{attributes}>",
        "<thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in headers) + "</tr></thead>",
        "<tbody>",
    ]
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            cls = " class=\"num\"" if i in numeric else ""
            if isinstance(cell, tuple):
                content, value = cell
                cells.append(f"<td{cls} data-v=\"{esc(value)}\">{content}</td>")
            else:
                cells.append(f"<td{cls}>{esc('' if cell is None else cell)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out) + "\n"


def settings_table(pairs: Sequence[tuple[str, object]]) -> str:
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in pairs)
    return f"<table class=\"settings\"><tbody>{rows}</tbody></table>\n"


def fmt_int(value: object) -> str:
    return (
        f"{value:,}"
        if isinstance(value, int) and not isinstance(value, bool)
        else ("" if value is None else str(value))
    )


def fmt_ms(value: float | None, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}g}"
