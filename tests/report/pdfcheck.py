"""Checks of a rendered PDF with pip-installed tools only (pypdf, pypdfium2): no text outside
the page, no monospace font, no page (but the last) more than 2/3 empty."""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: Font names that are monospace.
MONOSPACE = ("courier", "mono", "consol", "menlo")
#: A page counts as filled when at least this fraction of its horizontal bands hold ink.
MIN_FILLED = 1 / 3
#: Horizontal bands a page is cut into to measure how much of it is empty.
BANDS = 40


def fonts(path: Path) -> set[str]:
    """The base font names of every page's text."""
    from pypdf import PdfReader

    names = set()
    for page in PdfReader(str(path)).pages:
        resources = page.get("/Resources") or {}
        for font in (resources.get("/Font") or {}).values():
            names.add(str(font.get_object().get("/BaseFont", "")).lstrip("/"))
    return names


def text(path: Path) -> str:
    """All the PDF's text (what a reader can select)."""
    from pypdf import PdfReader

    return "\n".join(page.extract_text() or "" for page in PdfReader(str(path)).pages)


def problems(path: Path) -> list[str]:
    """What is wrong with the PDF's layout, one line per problem (empty: nothing)."""
    import pypdfium2 as pdfium

    found = [f"monospace font {name}" for name in fonts(path)
             if any(m in name.lower() for m in MONOSPACE)]
    document = pdfium.PdfDocument(str(path))
    for number in range(len(document)):
        page = document[number]
        width, height = page.get_size()
        textpage = page.get_textpage()
        for i in range(textpage.count_chars()):
            left, bottom, right, top = textpage.get_charbox(i)
            if right <= left:                       # spaces and generated characters
                continue
            if left < -0.5 or bottom < -0.5 or right > width + 0.5 or top > height + 0.5:
                found.append(f"page {number + 1}: text outside the page at "
                             f"({left:.0f}, {bottom:.0f})")
                break
        image = page.render(scale=0.5).to_numpy()[..., :3].mean(axis=-1)
        inked = (image < 200).any(axis=1)
        filled = np.mean([band.any() for band in np.array_split(inked, BANDS)])
        if number < len(document) - 1 and filled < MIN_FILLED:
            found.append(f"page {number + 1}: {1 - filled:.0%} empty")
    document.close()
    return found
