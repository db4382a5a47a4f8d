"""The report as a PDF: typeset by reportlab (:mod:`skcannon.report.typeset`, on every machine),
or the HTML page printed by headless Chromium when asked for and installed."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pandas as pd

from skcannon._version import __version__
from skcannon.report.html import Section

#: Seconds Chromium may take to print the page.
PRINT_TIMEOUT = 120


def chromium() -> str | None:
    """The Chromium executable on the ``PATH``.

    Returns
    -------
    str or None
        Path of ``chromium`` (or ``chromium-browser``); None when neither is installed.
    """
    return shutil.which("chromium") or shutil.which("chromium-browser")


def print_html_to_pdf(page: Path, path: Path) -> bool:
    """Print ``page`` (an HTML file) to ``path`` with headless Chromium.

    Parameters
    ----------
    page : Path
        The HTML file.
    path : Path
        The PDF to write (replaced only by a complete PDF).

    Returns
    -------
    bool
        True when the PDF was written; False when Chromium is missing, fails or takes more than
        :data:`PRINT_TIMEOUT` seconds (then nothing is written).
    """
    browser = chromium()
    if browser is None:
        return False
    with tempfile.TemporaryDirectory() as profile:
        tmp = path.with_name(f".{path.name}.printing")
        try:
            subprocess.run(
                [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", f"--user-data-dir={profile}", "--no-pdf-header-footer",
                 "--virtual-time-budget=15000", f"--print-to-pdf={tmp}",
                 Path(page).resolve().as_uri()],
                capture_output=True, timeout=PRINT_TIMEOUT, check=False)
            if not tmp.is_file() or not tmp.read_bytes().startswith(b"%PDF"):
                return False
            tmp.replace(path)
            return True
        except (OSError, subprocess.TimeoutExpired):
            return False
        finally:
            tmp.unlink(missing_ok=True)


#: PDF engines of :func:`write_pdf`.
PDF_ENGINES = ("reportlab", "chromium")


def write_pdf(path: str | Path, sections: list[Section], *, summary: pd.DataFrame | None = None,
              html_page: str | Path | None = None, title: str = "skcannon report",
              engine: str = "reportlab") -> Path:
    """The report as a PDF: typeset by reportlab (the default, on every machine:
    :func:`skcannon.report.typeset.write_typeset_pdf`), or ``html_page`` printed by headless
    Chromium (``engine="chromium"``; reportlab when Chromium is missing or fails).

    Parameters
    ----------
    path : str or path-like
        The PDF to write.
    sections : list of Section
        The report's parts, in order.
    summary : DataFrame, default=None
        A table shown first, under "Summary".
    html_page : str or path-like, default=None
        The HTML report Chromium prints (``engine="chromium"`` only).
    title : str, default="skcannon report"
        The PDF's first heading.
    engine : {"reportlab", "chromium"}, default="reportlab"
        Who typesets the PDF.

    Returns
    -------
    Path
        ``path``.
    """
    from skcannon.report.typeset import write_typeset_pdf

    if engine not in PDF_ENGINES:
        raise ValueError(f"engine must be one of {PDF_ENGINES}, got {engine!r}")
    path = Path(path)
    if engine == "chromium" and html_page is not None and print_html_to_pdf(Path(html_page),
                                                                             path):
        return path
    return write_typeset_pdf(path, title, sections, summary=summary,
                             subtitle=f"skcannon {__version__}")
