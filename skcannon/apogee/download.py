"""Fetch files from the SDSS archive (or any mirror laid out like it) over HTTP.

Safety: a file is written to a temporary name beside its destination, checked (complete, and for
apStar files readable with HDUs 1-3), and only then renamed to its final name. So a file under its
final name is always complete, an interrupted run loses nothing already finished, and a re-run
skips what is there.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from skcannon._version import __version__
from skcannon.apogee.archive import apstar_relpath, archive_url, data_dir, join_url
from skcannon.apogee.reader import ApStarSpectrum, read_apstar
from skcannon.errors import BadFileError, DownloadError
from skcannon.integrity import temporary_name, write_text_atomic

#: HTTP status codes worth retrying (server overloaded or briefly unavailable).
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_CHUNK = 1 << 16


def _validate_apstar(path: Path) -> None:
    read_apstar(path)


class Cancellation:
    """Stops downloads in flight: :meth:`cancel` marks them cancelled and shuts down their open
    connections, so a worker blocked in a read returns at once (Ctrl-C stops a batch within a
    moment instead of after every queued file)."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._open: set = set()

    @property
    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called."""
        return self._event.is_set()

    def cancel(self) -> None:
        """Cancel every download, now and to come."""
        self._event.set()
        with self._lock:
            for response in list(self._open):
                _shutdown(response)

    @contextmanager
    def watching(self, response) -> Iterator[None]:
        """Register an open HTTP response for the duration of the block."""
        with self._lock:
            self._open.add(response)
        try:
            if self.cancelled:
                raise DownloadCancelled("cancelled")
            yield
        finally:
            with self._lock:
                self._open.discard(response)


class DownloadCancelled(KeyboardInterrupt):
    """A download stopped by :meth:`Cancellation.cancel` (its partial file is kept)."""


def _shutdown(response) -> None:
    """Shut down the socket under an http.client response (no public handle exists)."""
    raw = getattr(getattr(response, "fp", None), "raw", None)
    sock = getattr(raw, "_sock", None)
    if sock is not None:
        with suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def partial_name(dest: Path) -> Path:
    """The hidden name a download of ``dest`` grows under until it is complete and checked."""
    return dest.with_name(f".{dest.name}.part")


def fetch_file(url: str, dest: str | Path, *,
               validate: Callable[[Path], None] | None = _validate_apstar, retries: int = 3,
               backoff: float = 0.5, timeout: float = 60.0,
               cancellation: Cancellation | None = None) -> str:
    """Download ``url`` to ``dest`` safely: the body grows under a hidden partial name beside
    ``dest`` (:func:`partial_name`), is checked (``validate``), and only then renamed to ``dest``.
    A partial file left by an interrupted download is resumed with an HTTP ``Range`` request
    where the server supports it (else fetched anew); one failing the check is removed. Another
    process fetching the same file (a lock on the partial file) makes this one use a private name.

    Parameters
    ----------
    url : str
        ``http(s)://`` or ``file://`` URL.
    dest : str or Path
        Final file name; not fetched again if it exists and passes ``validate``.
    validate : callable or None, default=the apStar check
        Called with the file; raises :class:`BadFileError` if it is not acceptable (default: the
        apStar reader, complete per its FITS headers, HDUs 1-3 present). None: no check.
    retries : int, default=3
        Further attempts after a failed one (connection error, truncated body, 5xx, bad file);
        a 404 is final.
    backoff : float, default=0.5
        Seconds before the first retry, doubling each time.
    timeout : float, default=60.0
        Socket timeout of each request, in seconds.
    cancellation : Cancellation or None, default=None
        Stops the download (raising :class:`DownloadCancelled`, partial file kept).

    Returns
    -------
    str
        ``"cached"`` (``dest`` was already valid) or ``"downloaded"``.

    Raises
    ------
    DownloadError
        After the last attempt, naming the URL and the last problem.
    ValueError
        When ``retries`` or ``backoff`` is negative or ``timeout`` is not positive.
    """
    if retries < 0 or backoff < 0 or timeout <= 0:
        raise ValueError(f"retries and backoff must be >= 0 and timeout > 0; got {retries}, "
                         f"{backoff}, {timeout}")
    dest = Path(dest)
    if _valid_file(dest, validate):
        return "cached"
    dest.parent.mkdir(parents=True, exist_ok=True)
    cancellation = cancellation or Cancellation()
    problem, attempt = "no attempt made", 0
    for attempt in range(retries + 1):
        if attempt and cancellation._event.wait(backoff * 2 ** (attempt - 1)):
            raise DownloadCancelled(url)
        done, problem, final = _attempt(url, dest, validate, timeout, cancellation)
        if done:
            return "downloaded"
        if final:
            break
    _discard(partial_name(dest))
    raise DownloadError(url, f"{problem} (after {attempt + 1} attempt(s))")


def _valid_file(dest: Path, validate: Callable[[Path], None] | None) -> bool:
    """True when ``dest`` exists and passes ``validate`` (a bad file under the final name,
    copied in by hand?, is fetched again)."""
    if not dest.is_file():
        return False
    try:
        if validate is not None:
            validate(dest)
        return True
    except BadFileError:
        return False


def _attempt(url: str, dest: Path, validate: Callable[[Path], None] | None, timeout: float,
             cancellation: Cancellation) -> tuple[bool, str, bool]:
    """One try at fetching ``url`` into ``dest`` through its partial file.

    Returns
    -------
    done : bool  the file is in place, checked
    problem : str  what went wrong ("" when done)
    final : bool  no retry can help (a 404, a ``file://`` URL of a missing file)
    """
    with _partial_file(dest) as (partial, handle):
        try:
            _stream_to(url, handle, timeout, cancellation)
            handle.close()
            if validate is not None:
                validate(partial)
            os.replace(partial, dest)
            return True, "", False
        except urllib.error.HTTPError as exc:
            final = exc.code not in RETRYABLE_STATUS
            if final:
                _discard(partial)
            return False, f"HTTP {exc.code} {exc.reason}", final
        except BadFileError as exc:
            _discard(partial)         # never resume from bad content
            return False, f"downloaded file is not valid: {exc.problem}", False
        except (urllib.error.URLError, OSError, ValueError) as exc:
            if cancellation.cancelled:
                raise DownloadCancelled(url) from None
            reason = getattr(exc, "reason", exc)
            final = (isinstance(exc, urllib.error.URLError)
                     and isinstance(reason, FileNotFoundError))   # file:// of a missing file
            if final:
                _discard(partial)
            return False, f"{type(exc).__name__}: {reason}", final


def _discard(path: Path) -> None:
    path.unlink(missing_ok=True)


@contextmanager
def _partial_file(dest: Path) -> Iterator[tuple[Path, object]]:
    """The partial file of ``dest`` opened for appending under an exclusive lock; when another
    process holds that lock, a private temporary name instead (removed afterwards)."""
    import fcntl

    shared = partial_name(dest)
    handle = open(shared, "ab")  # noqa: SIM115 - closed below
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        private = temporary_name(dest)
        handle = open(private, "wb")  # noqa: SIM115
        try:
            yield private, handle
        finally:
            handle.close()
            private.unlink(missing_ok=True)
        return
    try:
        yield shared, handle
    finally:
        handle.close()


def _stream_to(url: str, handle, timeout: float, cancellation: Cancellation) -> None:
    """Append ``url``'s body to the open file ``handle``, resuming from its current length with
    a Range request when it is not empty (a 200 answer restarts it from the beginning)."""
    have = handle.seek(0, os.SEEK_END)
    headers = {"User-Agent": f"skcannon/{__version__}"}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:           # nothing left to fetch: the partial is whole
            return
        raise
    with response, cancellation.watching(response):
        if have and response.status != 206:    # no resume: start again
            handle.seek(0)
            handle.truncate()
        expected = response.headers.get("Content-Length")
        received = 0
        while chunk := response.read(_CHUNK):
            if cancellation.cancelled:
                raise DownloadCancelled(url)
            handle.write(chunk)
            received += len(chunk)
        if cancellation.cancelled:
            raise DownloadCancelled(url)
    handle.flush()
    if expected is not None and received != int(expected):
        raise OSError(f"connection closed after {received} of {expected} bytes")


@dataclass
class DownloadReport:
    """What a batch download did, one record per requested file.

    Attributes
    ----------
    records : list of dict, default=[]
        One record per requested file, in request order, with ``apogee_id``, ``telescope``,
        ``field``, ``url``, ``path``, ``status`` (``"downloaded"``, ``"cached"`` or
        ``"failed"``) and ``error`` (empty unless failed).
    failures_path : str, default=""
        Where the failures were written as JSON; empty when nothing failed.
    spectra : dict of str to ApStarSpectrum, default={}
        With ``keep_spectra`` (see :func:`download_apstar`), the path of each file present
        mapped to the spectrum its validation read (so nobody has to read the file again);
        empty otherwise.
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


def download_apstar(selection: pd.DataFrame, *, archive: str | None = None,
                    directory: str | Path | None = None, n_workers: int = 4, retries: int = 3,
                    backoff: float = 0.5, timeout: float = 60.0, progress: bool = True,
                    failures_path: str | Path | None = None,
                    keep_spectra: bool = False) -> DownloadReport:
    """Download the apStar files of a selection, in parallel, into ``directory``.

    Parameters
    ----------
    selection : DataFrame
        Needs columns APOGEE_ID, TELESCOPE and FIELD; an optional FILE column (allStar's)
        gives the file names (else ``apStar-dr17-<ID>.fits`` for APO, ``asStar-dr17-<ID>.fits``
        for LCO).
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

    Raises
    ------
    KeyboardInterrupt
        On Ctrl-C: queued downloads are cancelled, running ones stopped (their open
        connections shut down) within a moment; finished files are kept and partial ones are
        resumed by the next run.
    """
    missing = [c for c in ("APOGEE_ID", "TELESCOPE", "FIELD") if c not in selection.columns]
    if missing:
        raise ValueError(f"selection lacks column(s) {', '.join(missing)}")
    if n_workers < 1 or retries < 0 or backoff < 0 or timeout <= 0:
        raise ValueError(f"workers must be >= 1, retries and backoff >= 0, timeout > 0; got "
                         f"{n_workers}, {retries}, {backoff}, {timeout}")
    root = data_dir(directory)
    jobs = _download_records(selection, archive_url(archive), root)
    spectra: dict[str, ApStarSpectrum] = {}
    options = {"retries": retries, "backoff": backoff, "timeout": timeout}
    _run_downloads(jobs, n_workers, progress, lambda record, cancellation: _download_one(
        record, options, cancellation, spectra if keep_spectra else None))
    report = DownloadReport(records=jobs, spectra=spectra)
    _write_failures(report, Path(failures_path) if failures_path
                    else root / "download_failures.json")
    return report


def _download_records(selection: pd.DataFrame, base: str, root: Path) -> list[dict]:
    """One record per row of ``selection``: its URL under ``base`` and path under ``root``
    (an ``error`` instead where the row names no valid archive path). The file name is the
    row's FILE entry where the selection has that column (allStar's), else the telescope's
    (``apStar-``/``asStar-``, see :func:`~skcannon.apogee.archive.apstar_relpath`)."""
    jobs = []
    files = (selection["FILE"] if "FILE" in selection.columns
             else pd.Series([None] * len(selection), index=selection.index))
    for row, file in zip(selection[["APOGEE_ID", "TELESCOPE", "FIELD"]].itertuples(index=False),
                         files, strict=True):
        record = {"apogee_id": str(row.APOGEE_ID), "telescope": str(row.TELESCOPE),
                  "field": str(row.FIELD), "url": "", "path": "", "status": "failed",
                  "error": ""}
        try:
            rel = apstar_relpath(row.TELESCOPE, row.FIELD, row.APOGEE_ID, file=file)
            record["url"] = join_url(base, rel)
            record["path"] = str(root / rel)
        except ValueError as exc:
            record["error"] = str(exc)
        jobs.append(record)
    return jobs


def _download_one(record: dict, options: dict, cancellation: Cancellation,
                  spectra: dict[str, ApStarSpectrum] | None) -> dict:
    """Fetch one record's file (``options``: retries, backoff, timeout), filling in its
    status or error; the spectrum its validation read goes to ``spectra`` when given."""
    if record["error"]:
        return record
    read: list[ApStarSpectrum] = []

    def validate(path: Path) -> None:      # the file's one read, kept when asked
        read.append(read_apstar(path, source=record["path"]))

    try:
        record["status"] = fetch_file(record["url"], record["path"], validate=validate,
                                      cancellation=cancellation, **options)
    except DownloadError as exc:
        record["error"] = exc.problem
    else:
        if spectra is not None:
            spectra[record["path"]] = read[-1]
    return record


def _run_downloads(jobs: list[dict], n_workers: int, progress: bool,
                   work: Callable[[dict, Cancellation], dict]) -> None:
    """``work`` on every record in a pool of ``n_workers`` threads, with a progress bar; on
    Ctrl-C (or a bug) the queued and running downloads are stopped."""
    from tqdm.auto import tqdm

    cancellation = Cancellation()
    pool = ThreadPoolExecutor(max_workers=max(1, n_workers))
    try:
        with tqdm(total=len(jobs), desc="apStar", unit="file", disable=not progress,
                  file=sys.stderr) as bar:
            futures = [pool.submit(work, record, cancellation) for record in jobs]
            for future in as_completed(futures):
                future.result()
                bar.update(1)
    except BaseException:
        cancellation.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown()


def _write_failures(report: DownloadReport, failures: Path) -> None:
    """The failures as JSON at ``failures`` (recorded in ``report``), or an old list removed
    when nothing failed."""
    if report.failed:
        write_text_atomic(failures, json.dumps(report.failed, indent=2))
        report.failures_path = str(failures)
    elif failures.is_file():
        failures.unlink()
