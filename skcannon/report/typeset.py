"""The report typeset as a PDF with reportlab (pure Python, on every machine): proportional
fonts, tables that wrap inside the page (wide ones split into column groups that repeat the
first column), figures scaled to the page with their captions, sections in the report's order.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd

from skcannon.integrity import atomic_write
from skcannon.report.html import Section

#: Page margins (points; 12 mm).
MARGIN = 34.0
#: Narrowest a table column may be (points); wider tables are split into column groups.
MIN_COLUMN_WIDTH = 52.0
#: Tallest a figure may be, as a fraction of the frame height (two fit on a page, so a page
#: break before a figure never leaves most of a page empty).
MAX_FIGURE_FRACTION = 0.5
#: Font size of table cells (points).
TABLE_FONT_SIZE = 6.5


def _styles() -> dict:
    from reportlab.lib import colors
    from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet

    base = getSampleStyleSheet()
    body = ParagraphStyle("body", parent=base["BodyText"], fontName="Helvetica", fontSize=9,
                          leading=11.5)
    return {
        "title": ParagraphStyle("title", parent=base["Title"], fontName="Helvetica-Bold",
                                fontSize=16, alignment=0),
        "h2": ParagraphStyle("h2", parent=base["Heading2"], fontName="Helvetica-Bold",
                             fontSize=12, spaceBefore=10, keepWithNext=1),
        "body": body,
        "caption": ParagraphStyle("caption", parent=body, fontSize=8, leading=10,
                                  textColor=colors.HexColor("#444444")),
        "note": ParagraphStyle("note", parent=body, fontSize=8.5, leading=10.5,
                               backColor=colors.HexColor("#fff8e0"), borderPadding=3,
                               spaceBefore=3, spaceAfter=5),
        "cell": ParagraphStyle("cell", parent=body, fontSize=TABLE_FONT_SIZE,
                               leading=TABLE_FONT_SIZE + 1.5, alignment=2),
        "text": ParagraphStyle("text", parent=body, fontSize=TABLE_FONT_SIZE,
                               leading=TABLE_FONT_SIZE + 1.5, alignment=0),
        "head": ParagraphStyle("head", parent=body, fontName="Helvetica-Bold",
                               fontSize=TABLE_FONT_SIZE, leading=TABLE_FONT_SIZE + 1.5,
                               alignment=1),
    }


def _text(value) -> str:
    if isinstance(value, float | np.floating):
        return "" if np.isnan(value) else f"{value:.4g}"
    return str(value)


def column_groups(n_columns: int, width: float, min_width: float = MIN_COLUMN_WIDTH
                  ) -> list[list[int]]:
    """Column indices of each part of a table too wide for the page: every part repeats
    column 0 (the identifier) and holds as many columns as fit at ``min_width`` each.

    Parameters
    ----------
    n_columns : int
        Columns of the table.
    width : float
        Width available (points).
    min_width : float, default=MIN_COLUMN_WIDTH
        Narrowest a column may be (points).

    Returns
    -------
    list of list of int
        One list per part; a single part ``[0, ..., n_columns - 1]`` when all fit.
    """
    per_part = max(2, int(width // min_width))
    if n_columns <= per_part:
        return [list(range(n_columns))]
    rest = list(range(1, n_columns))
    step = per_part - 1
    return [[0, *rest[i : i + step]] for i in range(0, len(rest), step)]


def _table_flowables(table: pd.DataFrame, width: float, styles: dict) -> list:
    from reportlab.lib import colors
    from reportlab.platypus import Paragraph, Spacer, Table, TableStyle

    if not len(table.columns):
        return [Paragraph("(no columns)", styles["caption"])]
    cells = [[_text(v) for v in row] for row in table.itertuples(index=False)]
    headers = [str(c) for c in table.columns]
    parts = []
    for group in column_groups(len(headers), width):
        # width of each column from its longest text, then stretched to the frame's width
        lengths = np.array([max([len(headers[j]) * 1.1, 3.0]
                                + [len(row[j]) for row in cells[:200]]) for j in group])
        widths = np.minimum(lengths, 40.0)
        widths = widths / widths.sum() * width
        data = [[Paragraph(html.escape(headers[j]), styles["head"]) for j in group]]
        kinds = [styles["cell"] if pd.api.types.is_numeric_dtype(table.dtypes.iloc[j])
                 else styles["text"] for j in group]      # numbers right, text left
        data += [[Paragraph(html.escape(row[j]), kind) for j, kind in zip(group, kinds,
                                                                           strict=True)]
                 for row in cells]
        grid = Table(data, colWidths=list(widths), repeatRows=1, hAlign="LEFT")
        grid.setStyle(TableStyle([
            ("GRID", (0, 0), (-1, -1), 0.3, colors.HexColor("#bbbbbb")),
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#f0f0f0")),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("LEFTPADDING", (0, 0), (-1, -1), 2), ("RIGHTPADDING", (0, 0), (-1, -1), 2),
            ("TOPPADDING", (0, 0), (-1, -1), 1), ("BOTTOMPADDING", (0, 0), (-1, -1), 1)]))
        parts += [grid, Spacer(1, 4)]
    return parts


def _figure_flowables(path: str, caption: str, width: float, height: float,
                      styles: dict, lead: list = ()) -> list:
    from reportlab.lib.utils import ImageReader
    from reportlab.platypus import Image, KeepTogether, Paragraph, Spacer

    pixels_w, pixels_h = ImageReader(str(path)).getSize()
    scale = min(width / pixels_w, height * MAX_FIGURE_FRACTION / pixels_h)
    image = Image(str(path), width=pixels_w * scale, height=pixels_h * scale, hAlign="LEFT")
    return [KeepTogether([*lead, image, Paragraph(html.escape(caption), styles["caption"]),
                          Spacer(1, 6)])]


def section_flowables(section: Section, width: float, height: float, styles: dict) -> list:
    """One section as reportlab flowables: heading, caption, note, tables, figures.

    Parameters
    ----------
    section : Section
    width, height : float
        The frame's size (points).
    styles : dict of str to ParagraphStyle

    Returns
    -------
    list of reportlab Flowable
    """
    from reportlab.platypus import Paragraph

    parts = [Paragraph(html.escape(section.title), styles["h2"])]
    if section.caption:
        parts.append(Paragraph(html.escape(section.caption), styles["body"]))
    if section.note:
        parts.append(Paragraph(html.escape(section.note), styles["note"]))
    for table, caption in section.tables:
        if caption:
            parts.append(Paragraph(html.escape(caption), styles["caption"]))
        parts += _table_flowables(table, width, styles)
    for k, (path, caption) in enumerate(section.figures):
        # the heading (and text) of a section without tables stays with its first figure
        lead = parts if k == 0 and not section.tables else []
        parts = [] if lead else parts
        parts += _figure_flowables(path, caption, width, height, styles, lead)
    return parts


def write_typeset_pdf(path: str | Path, title: str, sections: list[Section], *,
                      summary: pd.DataFrame | None = None, subtitle: str = "") -> Path:
    """Typeset ``sections`` as an A4 PDF with reportlab (no browser needed).

    Parameters
    ----------
    path : str or path-like
        The PDF to write (replaced only by a complete PDF).
    title : str
        First heading (and the PDF's title).
    sections : list of Section
        The report's parts, in order.
    summary : DataFrame, default=None
        A table shown first, under "Summary".
    subtitle : str, default=""
        A line under the title (e.g. the student's name, the package version).

    Returns
    -------
    Path
        ``path``.
    """
    from reportlab.lib.pagesizes import A4
    from reportlab.platypus import Paragraph, SimpleDocTemplate

    path = Path(path)
    styles = _styles()
    width, height = A4[0] - 2 * MARGIN, A4[1] - 2 * MARGIN
    story = [Paragraph(html.escape(title), styles["title"])]
    if subtitle:
        story.append(Paragraph(html.escape(subtitle), styles["caption"]))
    if summary is not None:
        story += section_flowables(Section("Summary", tables=[(summary, "")]), width, height,
                                   styles)
    for section in sections:
        story += section_flowables(section, width, height, styles)
    with atomic_write(path, overwrite=True) as tmp:
        document = SimpleDocTemplate(str(tmp), pagesize=A4, leftMargin=MARGIN,
                                     rightMargin=MARGIN, topMargin=MARGIN,
                                     bottomMargin=MARGIN, title=title, author="skcannon")
        document.build(story)
    return path
