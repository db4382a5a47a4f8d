"""
Select giants and download their spectra
========================================

Serve the shared APOGEE files as a local archive, index them, download the apStar files over HTTP
and read them. Against the real archive, pass ``archive="https://data.sdss.org/sas"`` and read the
allStar catalog with :func:`skcannon.read_catalog` instead of indexing a mirror.
"""

import tempfile

from skcannon.apogee import (
    QualityCuts,
    download_apstar,
    format_cut_table,
    index_apstar_files,
    read_apstar,
    select_giants,
    serve_mirror,
)
from skcannon.pipeline.resources import find_shared

shared = find_shared() / "apogee"
catalog = index_apstar_files(shared)  # ids, fields and SNR from the apStar headers (no labels)
selection = select_giants(catalog, fields=None, cuts=QualityCuts(require_labels=False))
print(format_cut_table(selection.attrs["cut_table"]))

with tempfile.TemporaryDirectory() as data, serve_mirror(shared) as url:
    report = download_apstar(selection, archive=url, directory=data, progress=False)
    print(report.summary())
    for path in report.paths:
        spectrum = read_apstar(path)
        print(f"{spectrum.apogee_id}: SNR {spectrum.snr:.0f}, "
              f"{spectrum.bad_fraction:.1%} of pixels masked")
