"""Fetch files from the SDSS archive (or any mirror laid out like it) over HTTP.

Safety: a file is written to a temporary name beside its destination, checked (complete, and for
apStar files readable with HDUs 1-3), and only then renamed to its final name. So a file under its
final name is always complete, an interrupted run loses nothing already finished, and a re-run
skips what is there.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from skcannon._version import __version__
from skcannon.apogee.archive import apstar_relpath, archive_url, data_dir, join_url
from skcannon.apogee.reader import ApStarSpectrum, read_apstar
from skcannon.errors import BadFileError, DownloadError
from skcannon.integrity import temporary_name

#: HTTP status codes worth retrying (server overloaded or briefly unavailable).
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_CHUNK = 1 << 16


def _validate_apstar(path: Path) -> None:
    read_apstar(path)


def fetch_file(
    url: str,
    dest: str | Path,
    *,
    validate: Callable[[Path], None] | None = _validate_apstar,
    retries: int = 3,
    backoff: float = 0.5,
    timeout: float = 60.0,
) -> str:
    """Download ``url`` to ``dest`` safely; return ``"cached"`` or ``"downloaded"``.

    Parameters
    ----------
    url : str
        ``http(s)://`` or ``file://`` URL.
    dest : path
        Final file name. If it exists and passes ``validate`` it is not fetched again; if it
        exists but fails ``validate`` it is fetched again.
    validate : callable or None
        Called with the temporary file; raises if the file is not acceptable.
    retries : int
        Further attempts after a failed one (connection error, truncated body, 5xx, corrupt file).
        A 404 is final.
    backoff : float
        Seconds before the first retry, doubling each time.

    Raises
    ------
    DownloadError
        Naming the URL and the last problem.
    """
    dest = Path(dest)
    if dest.is_file():
        try:
            if validate is not None:
                validate(dest)
            return "cached"
        except BadFileError:
            pass  # a bad file under the final name (copied in by hand?): fetch again
    dest.parent.mkdir(parents=True, exist_ok=True)
    problem = "no attempt made"
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        tmp = temporary_name(dest)
        try:
            _stream_to(url, tmp, timeout)
            if validate is not None:
                validate(tmp)
            os.replace(tmp, dest)
            return "downloaded"
        except urllib.error.HTTPError as exc:
            problem = f"HTTP {exc.code} {exc.reason}"
            if exc.code not in RETRYABLE_STATUS:
                break
        except BadFileError as exc:
            problem = f"downloaded file is not valid: {exc.problem}"
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            problem = f"{type(exc).__name__}: {reason}"
            if isinstance(exc, urllib.error.URLError) and isinstance(reason, FileNotFoundError):
                break  # file:// URL of a missing file: final
        finally:
            tmp.unlink(missing_ok=True)
    raise DownloadError(url, f"{problem} (after {attempt + 1} attempt(s))")


def _stream_to(url: str, tmp: Path, timeout: float) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": f"skcannon/{__version__}"})
    with urllib.request.urlopen(request, timeout=timeout) as response, open(tmp, "wb") as out:
        expected = response.headers.get("Content-Length")
        received = 0
        while chunk := response.read(_CHUNK):
            out.write(chunk)
            received += len(chunk)
    if expected is not None and received != int(expected):
        raise OSError(f"connection closed after {received} of {expected} bytes")


@dataclass
class DownloadReport:
    """What a batch download did, one record per requested file.

    Each record has ``apogee_id``, ``telescope``, ``field``, ``url``, ``path``, ``status``
    (``"downloaded"``, ``"cached"`` or ``"failed"``) and ``error`` (empty unless failed).
    With ``keep_spectra``, ``spectra`` maps the path of each file present to the spectrum its
    validation read (so nobody has to read the file again).
    """

    records: list[dict] = field(default_factory=list)
    failures_path: str = ""
    spectra: dict[str, ApStarSpectrum] = field(default_factory=dict)

    def count(self, status: str) -> int:
        """Number of records with the given status."""
        return sum(r["status"] == status for r in self.records)

    @property
    def failed(self) -> list[dict]:
        """Records of the files that could not be fetched."""
        return [r for r in self.records if r["status"] == "failed"]

    @property
    def paths(self) -> list[str]:
        """Local paths of the files now present (downloaded or cached), in request order."""
        return [r["path"] for r in self.records if r["status"] != "failed"]

    def summary(self) -> str:
        """One line: counts of downloaded / cached / failed files."""
        text = (f"{len(self.records)} files: {self.count('downloaded')} downloaded, "
                f"{self.count('cached')} cached, {self.count('failed')} failed")
        if self.failed and self.failures_path:
            text += f" (failures listed in {self.failures_path})"
        return text


def download_apstar(
    selection: pd.DataFrame,
    *,
    archive: str | None = None,
    directory: str | Path | None = None,
    n_workers: int = 4,
    retries: int = 3,
    backoff: float = 0.5,
    timeout: float = 60.0,
    progress: bool = True,
    failures_path: str | Path | None = None,
    keep_spectra: bool = False,
) -> DownloadReport:
    """Download the apStar files of a selection, in parallel, into ``directory``.

    Parameters
    ----------
    selection : DataFrame
        Needs columns APOGEE_ID, TELESCOPE and FIELD.
    archive : str, optional
        Archive base URL (default: ``$SKCANNON_ARCHIVE_URL`` or the SDSS SAS).
    directory : path, optional
        Data directory (default: ``$SKCANNON_DATA_DIR`` or ``~/.cache/skcannon``); files are
        stored under the archive's relative paths.
    n_workers : int
        Parallel downloads.
    progress : bool
        Show a progress bar on stderr.
    failures_path : path, optional
        Where the failures are written as JSON (default ``<directory>/download_failures.json``);
        written only when something failed, removed when a re-run has no failures.
    keep_spectra : bool
        Keep the spectrum each file's validation read (``DownloadReport.spectra``): every
        file is then read exactly once, by the download.

    Returns
    -------
    DownloadReport
        A failure never stops the batch; it is recorded with its reason.
    """
    from tqdm.auto import tqdm

    missing = [c for c in ("APOGEE_ID", "TELESCOPE", "FIELD") if c not in selection.columns]
    if missing:
        raise ValueError(f"selection lacks column(s) {', '.join(missing)}")
    base = archive_url(archive)
    root = data_dir(directory)
    jobs = []
    for row in selection[["APOGEE_ID", "TELESCOPE", "FIELD"]].itertuples(index=False):
        record = {"apogee_id": str(row.APOGEE_ID), "telescope": str(row.TELESCOPE),
                  "field": str(row.FIELD), "url": "", "path": "", "status": "failed",
                  "error": ""}
        try:
            rel = apstar_relpath(row.TELESCOPE, row.FIELD, row.APOGEE_ID)
            record["url"] = join_url(base, rel)
            record["path"] = str(root / rel)
        except ValueError as exc:
            record["error"] = str(exc)
        jobs.append(record)

    spectra: dict[str, ApStarSpectrum] = {}

    def work(record: dict) -> dict:
        if record["error"]:
            return record
        read: list[ApStarSpectrum] = []

        def validate(path: Path) -> None:      # the file's one read, kept when asked
            read.append(read_apstar(path, source=record["path"]))

        try:
            record["status"] = fetch_file(record["url"], record["path"], retries=retries,
                                          backoff=backoff, timeout=timeout, validate=validate)
        except DownloadError as exc:
            record["error"] = exc.problem
        else:
            if keep_spectra:
                spectra[record["path"]] = read[-1]
        return record

    with ThreadPoolExecutor(max_workers=max(1, n_workers)) as pool, tqdm(
        total=len(jobs), desc="apStar", unit="file", disable=not progress, file=sys.stderr,
    ) as bar:
        futures = [pool.submit(work, record) for record in jobs]
        for future in as_completed(futures):
            future.result()
            bar.update(1)
    report = DownloadReport(records=jobs, spectra=spectra)
    failures = Path(failures_path) if failures_path else root / "download_failures.json"
    if report.failed:
        failures.parent.mkdir(parents=True, exist_ok=True)
        failures.write_text(json.dumps(report.failed, indent=2))
        report.failures_path = str(failures)
    elif failures.is_file():
        failures.unlink()
    return report

