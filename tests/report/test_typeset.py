"""The report PDF typeset without a browser (reportlab): checked by rendering it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from skcannon.plotting import save_figure
from skcannon.report import Section, write_pdf
from skcannon.report.typeset import column_groups
from tests.report import pdfcheck


def _figure(path, width, height):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    ax = figure.add_subplot()
    ax.plot(np.arange(50), np.sin(np.arange(50) / 5))
    ax.set_xlabel("pixel")
    return str(save_figure(figure, path))


def _sections(tmp_path):
    rng = np.random.default_rng(0)
    wide = pd.DataFrame(rng.normal(size=(77, 16)), columns=[f"column_{i}_ERR" for i in range(16)])
    wide.insert(0, "APOGEE_ID", [f"2M{i:08d}+1234567" for i in range(77)])
    labels = pd.DataFrame({"APOGEE_ID": ["2M21235315+1244123"], "TEFF": [4712.3],
                           "LOGG": [2.41], "FE_H": [-0.12], "FLAGS": ["ON_BOUND|OUTSIDE_TRAINING"]})
    return [
        Section("Labels of the real spectra", "One row per star.", tables=[(labels, "")]),
        Section("Outliers", "77 rows x 17 columns.", tables=[(wide, "every column")]),
        Section("Figures", note="a note", figures=[
            (_figure(tmp_path / "wide.png", 8, 1.8), "A wide figure."),
            (_figure(tmp_path / "square.png", 6, 6), "A square figure."),
            (_figure(tmp_path / "tall.png", 4, 12), "A tall figure.")]),
    ]


def test_report_pdf_is_typeset_without_chromium(tmp_path):
    path = write_pdf(tmp_path / "report.pdf", _sections(tmp_path), engine="reportlab",
                     summary=pd.DataFrame({"stage": ["train"], "result": ["1 model"]}))
    assert pdfcheck.problems(path) == []
    assert any("Helvetica" in name for name in pdfcheck.fonts(path))
    text = pdfcheck.text(path)
    for words in ("Labels of the real spectra", "2M21235315+1244123", "A square figure.",
                  "column_15_ERR", "Summary"):
        assert words in text
    # the wide table was split into column groups, each repeating the identifier column
    assert text.count("APOGEE_ID") >= 2


def test_column_groups_fit_the_page():
    assert column_groups(5, 527.0) == [[0, 1, 2, 3, 4]]
    groups = column_groups(17, 527.0, min_width=52.0)
    assert all(g[0] == 0 and len(g) <= 10 for g in groups)
    assert sorted({c for g in groups for c in g}) == list(range(17))


def test_the_pdf_check_finds_monospace_text_off_the_page_and_empty_pages(tmp_path):
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure

    path = tmp_path / "bad.pdf"
    with PdfPages(path) as pdf:
        for _ in range(2):
            page = Figure(figsize=(8.27, 11.69))
            page.text(0.05, 0.97, "tiny monospace text", family="monospace", fontsize=5.5,
                      va="top")
            page.text(0.9, 0.5, "a line running off the right edge of the page", fontsize=12)
            pdf.savefig(page)
    found = pdfcheck.problems(path)
    assert any("monospace" in p for p in found)
    assert any("outside the page" in p for p in found)
    assert any("empty" in p for p in found)


def test_unknown_engine_is_refused(tmp_path):
    with pytest.raises(ValueError, match="engine"):
        write_pdf(tmp_path / "r.pdf", [], engine="typst")


def test_html_tables_scroll_inside_the_page(tmp_path):
    from skcannon.report import write_report

    page = write_report(tmp_path, "r", _sections(tmp_path)).read_text()
    assert page.count("<div class='table-wrap'><table") == 2
    assert ".table-wrap { overflow-x: auto;" in page
