"""A local mirror of the archive: serve a directory of APOGEE files over HTTP on 127.0.0.1.

The shared development data are laid out as ``apogee/dr17/stars/{telescope}/{field}/...``
while the archive uses ``dr17/apogee/spectro/redux/dr17/stars/{telescope}/{field}/...``;
:class:`ArchiveMirror` maps archive paths onto such a directory through prefix ``routes``,
so download code talks real HTTP to it exactly as to the SDSS archive. Also builds an index
catalog of the apStar files found in a directory, for runs without the allStar catalog.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import posixpath
import threading
import urllib.parse
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from skcannon.apogee.catalog import catalog_columns
from skcannon.apogee.constants import APSTAR_DR17_GLOB
from skcannon.labels import DEFAULT_LABELS

#: Archive prefix -> directory (relative to the mirror root) for the shared data layout.
SHARED_LAYOUT_ROUTES: Mapping[str, str] = {
    "dr17/apogee/spectro/redux/dr17/stars/": "dr17/stars/",
}


class ArchiveRequestHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files of ``root`` under archive paths rewritten by ``routes``; no listings."""

    def __init__(self, *args, root: Path, routes: Mapping[str, str], **kwargs) -> None:
        self.routes = dict(routes)
        super().__init__(*args, directory=str(root), **kwargs)

    def translate_path(self, path: str) -> str:
        rel = posixpath.normpath(urllib.parse.unquote(urllib.parse.urlsplit(path).path))
        rel = rel.lstrip("/")
        if rel.startswith("..") or "/../" in f"/{rel}/":
            return str(Path(self.directory) / "__outside__")
        for prefix, target in self.routes.items():
            if rel.startswith(prefix):
                rel = target + rel[len(prefix):]
                break
        return str(Path(self.directory) / rel)

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        """Serve a file, or its tail for ``Range: bytes=N-`` (206), as archive servers do."""
        wanted = self.headers.get("Range", "")
        local = Path(self.translate_path(self.path))
        if not (wanted.startswith("bytes=") and wanted.endswith("-") and local.is_file()):
            return super().do_GET()
        try:
            start = int(wanted[len("bytes="):-1])
        except ValueError:
            return self.send_error(400, "Bad Range")
        data = local.read_bytes()
        if start >= len(data):
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.end_headers()
            return None
        self.send_response(206)
        self.send_header("Content-Type", self.guess_type(str(local)))
        self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self.wfile.write(data[start:])
        return None

    def list_directory(self, path):  # noqa: D102 - no listings
        self.send_error(404, "Not found")
        return None

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        pass


class ArchiveMirror:
    """An HTTP server on 127.0.0.1 (a free port by default) serving ``root`` like the archive.

    Use as a context manager; ``url`` is the archive base URL to pass to the downloader.
    The socket is bound on construction; entering starts serving on a daemon thread, leaving
    shuts the server down and closes it.

    Parameters
    ----------
    root : str or Path
        Directory whose files are served (directory listings are refused with 404).
    routes : mapping of str to str, default=SHARED_LAYOUT_ROUTES
        Archive path prefix -> directory relative to ``root``; a request path starting with a
        prefix is served from the directory instead (the first matching prefix wins).
    port : int, default=0
        Port on 127.0.0.1; 0 lets the system pick a free one.
    handler : type, default=ArchiveRequestHandler
        Request handler class, :class:`ArchiveRequestHandler` or a subclass (tests use one
        that injects faults).

    Attributes
    ----------
    server : http.server.ThreadingHTTPServer
        The bound server.
    url : str
        ``http://127.0.0.1:<port>``, the base URL to pass as the archive URL.

    Raises
    ------
    FileNotFoundError
        ``root`` is not a directory.
    OSError
        The port cannot be bound (e.g. already in use).
    """

    def __init__(self, root: str | Path, routes: Mapping[str, str] = SHARED_LAYOUT_ROUTES,
                 port: int = 0, handler: type = ArchiveRequestHandler) -> None:
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"{root}: mirror directory not found")
        factory = functools.partial(handler, root=root, routes=routes)
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), factory)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> ArchiveMirror:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)


@contextlib.contextmanager
def serve_mirror(root: str | Path, *, routes: Mapping[str, str] = SHARED_LAYOUT_ROUTES,
                 port: int = 0) -> Iterator[str]:
    """Context manager yielding the base URL of an :class:`ArchiveMirror` of ``root``.

    Parameters
    ----------
    root : str or Path
        Directory whose files are served.
    routes : mapping of str to str, default=SHARED_LAYOUT_ROUTES
        Archive path prefix -> directory relative to ``root`` (see :class:`ArchiveMirror`).
    port : int, default=0
        Port on 127.0.0.1; 0 lets the system pick a free one.

    Yields
    ------
    str
        The mirror's base URL, ``http://127.0.0.1:<port>``; the server stops when the
        ``with`` block ends.

    Raises
    ------
    FileNotFoundError
        ``root`` is not a directory.
    """
    with ArchiveMirror(root, routes, port) as mirror:
        yield mirror.url


def index_apstar_files(root: str | Path, *, labels=DEFAULT_LABELS) -> pd.DataFrame:
    """An allStar-like catalog of the DR17 apStar files below ``root``, from their headers.

    Only DR17 files (``apStar-dr17-*`` of APO, ``asStar-dr17-*`` of LCO) are indexed: the
    catalog is used to download DR17 archive paths, where older releases' files (e.g. DR13
    ``apStar-r6-*``) do not live. Each row's FILE is the file's name, so the downloader's
    path (:func:`~skcannon.apogee.archive.apstar_relpath`) names the very file indexed.

    apStar headers hold ids, field, SNR and STARFLAG but no ASPCAP labels: label columns are
    NaN and ASPCAPFLAG is 0. Use it where the allStar catalog is not at hand, with label cuts off.

    Parameters
    ----------
    root : str or Path
        Directory searched recursively for ``apStar-dr17-*.fits`` and ``asStar-dr17-*.fits``
        files.
    labels : sequence of str, default=DEFAULT_LABELS
        Label columns of the catalog (and their ``_ERR`` columns), all NaN.

    Returns
    -------
    DataFrame of shape (n_files, n_columns)
        One row per file, in sorted path order, with the columns of
        :func:`~skcannon.apogee.catalog.catalog_columns`: APOGEE_ID (header OBJID), TELESCOPE
        and FIELD (the directories two and one levels up, where the file lies in the archive
        layout ``{telescope}/{field}/file`` below ``root``; else the header's TELESCOP and
        FIELD, falling back to those directories), SNR (NaN when absent), STARFLAG (0 when
        absent), ASPCAPFLAG 0, labels NaN, then FILE (the file name). No rows when no file
        is found.

    Raises
    ------
    OSError
        A file's primary header cannot be read, e.g. it is not FITS (astropy's error,
        passed on unchanged).
    """
    from astropy.io import fits

    rows = []
    root = Path(root)
    for path in sorted(root.rglob(APSTAR_DR17_GLOB)):
        header = fits.getheader(path, 0)
        row = {c: np.nan for c in catalog_columns(labels)}
        in_layout = len(path.relative_to(root).parts) >= 3      # .../{telescope}/{field}/file
        row.update(
            APOGEE_ID=str(header.get("OBJID", "")).strip(),
            TELESCOPE=(path.parent.parent.name if in_layout
                       else str(header.get("TELESCOP", path.parent.parent.name)).strip()),
            FIELD=(path.parent.name if in_layout
                   else str(header.get("FIELD", path.parent.name)).strip()),
            SNR=float(header.get("SNR", np.nan)),
            STARFLAG=int(header.get("STARFLAG", 0)),
            ASPCAPFLAG=0,
            FILE=path.name,
        )
        rows.append(row)
    return pd.DataFrame(rows, columns=[*catalog_columns(labels), "FILE"])
