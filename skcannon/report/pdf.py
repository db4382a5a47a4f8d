"""The report as a PDF: the HTML page printed by headless Chromium when it is installed (typeset
like the page: wrapped tables, figures with their captions), else matplotlib pages."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import textwrap
from pathlib import Path

import pandas as pd

from skcannon.integrity import atomic_write
from skcannon.report.html import Section

#: Seconds Chromium may take to print the page.
PRINT_TIMEOUT = 120
#: Characters per line of the matplotlib fallback's text pages (monospace 5.5 pt on A4).
FALLBACK_WIDTH = 150


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


def write_pdf(path: str | Path, sections: list[Section], *, summary: pd.DataFrame | None = None,
              html_page: str | Path | None = None) -> Path:
    """The report as a PDF: ``html_page`` printed by Chromium when possible (typeset like the
    HTML report), else matplotlib pages: the summary and tables as wrapped text, then one
    figure a page with its caption.

    Parameters
    ----------
    path : str or path-like
        The PDF to write.
    sections : list of Section
        The report's parts (used by the matplotlib pages).
    summary : DataFrame, default=None
        Rows with ``stage`` and ``result`` columns, listed first on the matplotlib pages.
    html_page : str or path-like, default=None
        The HTML report to print; None: matplotlib pages.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    if html_page is not None and print_html_to_pdf(Path(html_page), path):
        return path
    return _matplotlib_pdf(path, sections, summary)


def _matplotlib_pdf(path: Path, sections: list[Section], summary: pd.DataFrame | None) -> Path:
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure
    from matplotlib.image import imread

    with atomic_write(path, overwrite=True) as tmp, PdfPages(tmp) as pdf:
        text = ["skcannon report", ""]
        if summary is not None:
            text += [f"{r.stage}: {r.result}" for r in summary.itertuples()]
        for section in sections:
            for table, caption in section.tables:
                text += ["", f"{section.title}: {caption}", table.to_string(
                    index=False, max_rows=25, float_format=lambda v: f"{v:.4g}")]
        text = [wrapped for line in "\n".join(text).split("\n")
                for wrapped in (textwrap.wrap(line, FALLBACK_WIDTH, drop_whitespace=False)
                                or [""])]
        for start in range(0, len(text), 70):
            page = Figure(figsize=(8.27, 11.69))
            page.text(0.05, 0.97, "\n".join(text[start : start + 70]), family="monospace",
                      fontsize=5.5, va="top")
            pdf.savefig(page)
        for section in sections:
            for figure_path, caption in section.figures:
                page = Figure(figsize=(8.27, 11.69))
                ax = page.add_axes((0.05, 0.15, 0.9, 0.8))
                ax.imshow(imread(figure_path))
                ax.axis("off")
                page.text(0.05, 0.1, f"{section.title}: {caption}", fontsize=8, wrap=True)
                pdf.savefig(page)
    return path
