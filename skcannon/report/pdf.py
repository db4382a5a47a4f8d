"""The report as a PDF (matplotlib pages)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from skcannon.report.html import Section


def write_pdf(path: str | Path, sections: list[Section], *, summary: pd.DataFrame | None = None
              ) -> Path:
    """The report as a PDF: a title page with the summary and tables, then one figure a page."""
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure
    from matplotlib.image import imread

    path = Path(path)
    with PdfPages(path) as pdf:
        text = ["skcannon report", ""]
        if summary is not None:
            text += [f"{r.stage}: {r.result}" for r in summary.itertuples()]
        for section in sections:
            for table, caption in section.tables:
                text += ["", f"{section.title}: {caption}", table.to_string(
                    index=False, max_rows=25, float_format=lambda v: f"{v:.4g}")]
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
