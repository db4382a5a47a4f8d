"""The report: every figure and table of a run, as an HTML page and a PDF.

* :mod:`.html`: :class:`Section` and the self-contained HTML page;
* :mod:`.pdf`: the same sections as a PDF;
* :mod:`.science`: the mission's science figures and numbers as sections;
* :mod:`.sections`: the sections of a run's own steps (selection, cross-validation, outliers,
  labels, posterior).
"""

from skcannon.report.html import Section, write_report
from skcannon.report.pdf import write_pdf
from skcannon.report.science import ScienceInputs, science_sections

__all__ = ["ScienceInputs", "Section", "science_sections", "write_pdf", "write_report"]
