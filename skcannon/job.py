"""The main job, stage by stage: select -> download -> read (later: normalize, train, validate).

Each stage is a function over library calls; the CLI's ``run`` command only parses options and
calls :func:`run_main_job`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import pandas as pd

from skcannon.apogee.archive import allstar_relpath, archive_url, data_dir, join_url
from skcannon.apogee.catalog import (
    QualityCuts,
    format_cut_table,
    query_skyserver,
    read_catalog,
    select_giants,
    write_selection,
)
from skcannon.apogee.constants import DEFAULT_FIELDS
from skcannon.apogee.download import DownloadReport, download_apstar
from skcannon.apogee.mirror import ArchiveMirror, index_apstar_files
from skcannon.apogee.reader import read_apstar
from skcannon.errors import CatalogError, DownloadError, SkcannonError


@dataclass
class DataStageResult:
    """What the data stage produced."""

    selection: pd.DataFrame
    cut_table: list[dict]
    download: DownloadReport
    spectra: list = field(default_factory=list)
    read_failures: list[dict] = field(default_factory=list)
    summary: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)


def load_catalog_for_job(
    catalog: str | None, base_url: str, directory: Path, mirror_root: Path | None,
    fields: Sequence[str] | None, log: TextIO,
) -> tuple[pd.DataFrame, bool, list[str]]:
    """The catalog for the job and whether label cuts can apply to it.

    ``catalog`` is a path or URL, ``"skyserver"`` (SQL through astroquery), or None: then the
    allStar file at the archive, and, when that is unreachable and a local mirror is in use, an
    index of the mirror's apStar files (ids, fields, SNR; no labels).
    """
    notes: list[str] = []
    if catalog == "skyserver":
        return query_skyserver(fields or DEFAULT_FIELDS), True, notes
    if catalog:
        return read_catalog(catalog, data_dir=directory), True, notes
    url = join_url(base_url, allstar_relpath())
    try:
        print(f"catalog: fetching {url}", file=log)
        return read_catalog(url, data_dir=directory), True, notes
    except (CatalogError, DownloadError) as exc:
        if mirror_root is None:
            raise
        notes.append(f"allStar catalog not available from the mirror ({exc}); using an index of "
                     f"the apStar files in {mirror_root} instead: it has ids, fields and SNR but "
                     "no ASPCAP labels, so the label cuts are not applied")
        print(f"note: {notes[-1]}", file=log)
        return index_apstar_files(mirror_root), False, notes


def run_data_stage(
    catalog: str | None = None,
    archive: str | None = None,
    directory: str | Path | None = None,
    fields: Sequence[str] | None = DEFAULT_FIELDS,
    cuts: QualityCuts | None = None,
    output: str | Path = "skcannon-output",
    mirror_root: str | Path | None = None,
    n_workers: int = 4,
    progress: bool = True,
    log: TextIO = sys.stdout,
) -> DataStageResult:
    """Select giants, download their apStar files and read them.

    With ``mirror_root`` a local directory (e.g. ``../shared/apogee``) is served over HTTP on
    127.0.0.1 and used as the archive. Writes ``selection.csv`` and ``data_summary.csv`` to
    ``output``.
    """
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    directory = data_dir(directory)
    cuts = cuts or QualityCuts()
    with contextlib.ExitStack() as stack:
        if mirror_root is not None:
            mirror_root = Path(mirror_root)
            base = stack.enter_context(ArchiveMirror(mirror_root)).url
            print(f"archive: local mirror of {mirror_root} served at {base}", file=log)
        else:
            base = archive_url(archive)
            print(f"archive: {base}", file=log)
        frame, has_labels, notes = load_catalog_for_job(
            catalog, base, directory, mirror_root, fields, log)
        if not has_labels:
            cuts = dataclasses.replace(cuts, require_labels=False)
            fields = None if mirror_root is not None else fields
        selection = select_giants(frame, fields=fields, cuts=cuts)
        cut_table = selection.attrs["cut_table"]
        print("\n" + format_cut_table(cut_table) + "\n", file=log)
        write_selection(selection, output / "selection.csv")
        report = download_apstar(selection, archive=base, directory=directory,
                                 n_workers=n_workers, progress=progress)
        print(report.summary(), file=log)
    spectra, failures, rows = [], [], []
    for record in report.records:
        if record["status"] == "failed":
            rows.append({**_identity(record), "status": "download failed",
                         "problem": record["error"]})
            continue
        try:
            spectrum = read_apstar(record["path"])
        except SkcannonError as exc:
            failures.append({**_identity(record), "problem": str(exc)})
            rows.append({**_identity(record), "status": "read failed", "problem": str(exc)})
            continue
        spectra.append(spectrum)
        rows.append({**_identity(record), "status": record["status"], "snr": spectrum.snr,
                     "bad_pixel_fraction": round(spectrum.bad_fraction, 4), "problem": ""})
    summary = pd.DataFrame(rows)
    summary.to_csv(output / "data_summary.csv", index=False)
    return DataStageResult(selection, cut_table, report, spectra, failures, summary, notes)


def _identity(record: dict) -> dict:
    return {"apogee_id": record["apogee_id"], "telescope": record["telescope"],
            "field": record["field"]}
