"""A self-contained HTML report: figures (PNG files beside it) and tables, with captions."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from skcannon._version import __version__
from skcannon.integrity import write_text_atomic

_STYLE = """
body { font-family: sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption, p.caption { font-size: 0.9em; color: #444; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
td, th { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
th { background: #f4f4f4; } .table-wrap { overflow-x: auto; max-width: 100%; }
.note { background: #fff8e0; padding: 0.5em; }
@page { size: A4; margin: 12mm; }
@media print {
  body { max-width: none; margin: 0; font-size: 9pt; }
  h2 { break-after: avoid; margin-top: 1.2em; }
  table { font-size: 6.5pt; table-layout: fixed; width: 100%; }
  td, th { overflow-wrap: anywhere; word-break: break-word; padding: 1px 3px; }
  figure { break-inside: avoid; } figure img { max-height: 215mm; }
  p.caption, p.note { break-after: avoid; }
}
"""


@dataclass
class Section:
    """A titled part of the report: a caption, a note, then tables and figures.

    Attributes
    ----------
    title : str
        Heading of the section (its anchor in the HTML page is made from it).
    caption : str, default=""
        Text below the heading.
    figures : list of (str, str), default=[]
        (path of an image file, caption) per figure.
    tables : list of (DataFrame, str), default=[]
        (table, caption) per table.
    note : str, default=""
        Highlighted remark (e.g. why a figure is missing).
    """

    title: str
    caption: str = ""
    figures: list[tuple[str, str]] = field(default_factory=list)   # (path, caption)
    tables: list[tuple[pd.DataFrame, str]] = field(default_factory=list)
    note: str = ""


def _table_html(table: pd.DataFrame) -> str:
    # a wide table scrolls inside the page's width instead of running off its right edge
    return "<div class='table-wrap'>" + table.to_html(
        index=False, border=0, float_format=lambda v: f"{v:.4g}", classes="data",
        escape=True) + "</div>"


def write_report(directory: str | Path, title: str, sections: list[Section],
                 *, summary: pd.DataFrame | None = None) -> Path:
    """Write ``index.html`` in ``directory``; figure paths are made relative to it.

    Text and captions are HTML-escaped; numbers in tables are shown with 4 significant digits.

    Parameters
    ----------
    directory : str or path-like
        Where the page goes (created if missing).
    title : str
        Page title and first heading.
    sections : list of Section
        The report's parts, in order.
    summary : DataFrame, default=None
        A table shown first, under "Summary".

    Returns
    -------
    Path
        The page, ``directory / "index.html"``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
             f"</title><style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>",
             f"<p class='caption'>skcannon {__version__}</p>"]
    if summary is not None:
        parts.append("<h2 id='summary'>Summary</h2>" + _table_html(summary))
    for section in sections:
        anchor = "".join(c if c.isalnum() else "-" for c in section.title.lower())
        parts.append(f"<h2 id='{anchor}'>{html.escape(section.title)}</h2>")
        if section.caption:
            parts.append(f"<p class='caption'>{html.escape(section.caption)}</p>")
        if section.note:
            parts.append(f"<p class='note'>{html.escape(section.note)}</p>")
        for table, caption in section.tables:
            if caption:
                parts.append(f"<p class='caption'>{html.escape(caption)}</p>")
            parts.append(_table_html(table))
        for path, caption in section.figures:
            rel = Path(path).resolve().relative_to(directory.resolve()).as_posix() \
                if Path(path).resolve().is_relative_to(directory.resolve()) else str(path)
            parts.append(f"<figure><img src='{html.escape(rel)}' alt='{html.escape(caption)}'>"
                         f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    # records each image's natural width once loaded (what the report test reads back)
    parts.append("<script>window.addEventListener('load', function () {"
                 "document.querySelectorAll('img').forEach(function (img) {"
                 "img.setAttribute('data-natural-width', img.naturalWidth); });"
                 "document.body.setAttribute('data-loaded', 'yes'); });</script>")
    parts.append("</body></html>")
    path = directory / "index.html"
    write_text_atomic(path, "\n".join(parts))
    return path
