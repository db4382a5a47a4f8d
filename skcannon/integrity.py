"""Files skcannon writes: atomic replacement, format/version checks and digests, in one place.

Every writer goes through :func:`atomic_write` (a temporary name beside the target, renamed over
it only when complete), and every reader of an skcannon file through :func:`check_format`, so a
file under its final name is always whole and a foreign or newer file is named as such.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import socket
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from skcannon.errors import BadFileError

#: Bytes per read when hashing a file.
_HASH_BLOCK = 1 << 20
#: HDF5 files skcannon writes reserve this many bytes at the start (an HDF5 "user block", which
#: the HDF5 library skips) for a seal: the SHA-256 of every byte after it.
SEAL_SIZE = 512
#: How a seal starts.
SEAL_MAGIC = b"skcannon sha256 "


def _seal_for(body: bytes) -> bytes:
    digest = hashlib.sha256(body).hexdigest().encode()
    return (SEAL_MAGIC + digest + b"\n").ljust(SEAL_SIZE, b"\0")


def seal_file(path: str | Path) -> None:
    """Write the seal into the user block of an HDF5 file created with
    ``userblock_size=SEAL_SIZE`` (after the HDF5 library has closed it).

    Parameters
    ----------
    path : str or path-like
        The file, changed in place.
    """
    with open(path, "r+b") as handle:
        handle.seek(SEAL_SIZE)
        body = handle.read()
        handle.seek(0)
        handle.write(_seal_for(body))


def check_seal(path: str | Path, what: str) -> None:
    """Check a sealed file as a whole *before* any parser sees it (a damaged HDF5 file can
    crash the HDF5 library itself, so its structure must not be read first).

    Parameters
    ----------
    path : str or path-like
        The file.
    what : str
        What the file should be, for the message (e.g. "dataset file").

    Raises
    ------
    BadFileError
        Naming the file: no seal (not an skcannon ``what``, or written before seals), or a seal
        that does not match every byte after it.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise BadFileError(path, f"cannot be read ({exc})") from exc
    if not data.startswith(SEAL_MAGIC) or len(data) <= SEAL_SIZE:
        raise BadFileError(path, f"not a sealed skcannon {what} (no integrity seal: another "
                                 "program's file, one written by an older skcannon, or a "
                                 "damaged start)")
    if data[:SEAL_SIZE] != _seal_for(data[SEAL_SIZE:]):
        raise BadFileError(path, "checksum mismatch: the file was modified or damaged")


def temporary_name(path: Path) -> Path:
    """A hidden name beside ``path``, unique to this process and call (``.name.pid.xxxx.part``).

    Parameters
    ----------
    path : Path
        The target file.

    Returns
    -------
    Path
    """
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.part")


@contextmanager
def atomic_write(path: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Write a file atomically: yields a temporary path to write to; on success it replaces
    ``path`` in one rename, on any error it is removed and ``path`` is untouched.

    Parameters
    ----------
    path : str or path-like
        The target file (missing parent directories are created).
    overwrite : bool, default=False
        Allow replacing an existing ``path``.

    Yields
    ------
    Path
        The temporary file to write (:func:`temporary_name`).

    Raises
    ------
    FileExistsError
        ``path`` exists and ``overwrite`` is False (checked before any work is done).
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_write` (replacing it).

    Parameters
    ----------
    path : str or path-like
        The file (its directory is created if missing).
    text : str
        The whole content.

    Returns
    -------
    Path
        ``path``.
    """
    with atomic_write(path, overwrite=True) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_csv_atomic(table, path: str | Path, **to_csv_options) -> Path:
    """Write a DataFrame as CSV through :func:`atomic_write` (replacing ``path``).

    Parameters
    ----------
    table : DataFrame
        The table.
    path : str or path-like
        The CSV file (its directory is created if missing).
    **to_csv_options
        Passed on to ``DataFrame.to_csv`` (e.g. ``index=False``).

    Returns
    -------
    Path
        ``path``.
    """
    with atomic_write(path, overwrite=True) as tmp:
        table.to_csv(tmp, **to_csv_options)
    return Path(path)


def read_csv_table(path: str | Path, **read_csv_options):
    """Read a CSV table whose header names every column once.

    pandas renames a repeated column (``TEFF``, ``TEFF`` -> ``TEFF``, ``TEFF.1``), so a table with
    two TEFF columns would silently give the first; this refuses it instead.

    Parameters
    ----------
    path : str or path-like
        The CSV file.
    **read_csv_options
        Passed on to ``pandas.read_csv`` (e.g. ``dtype``).

    Returns
    -------
    DataFrame

    Raises
    ------
    BadFileError
        Naming the file and the repeated column names.
    """
    import pandas as pd

    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        header = [name.strip() for name in next(csv.reader(handle), [])]
    repeated = sorted({name for name in header if name and header.count(name) > 1})
    if repeated:
        raise BadFileError(path, f"column {', '.join(repeated)} appears more than once in the "
                                 "header; which one holds the values is ambiguous")
    return pd.read_csv(path, **read_csv_options)


def check_format(path: str | Path, attributes: Mapping, *, expected_format: str,
                 expected_version: int, what: str) -> None:
    """Check the ``format`` and ``format_version`` attributes of an skcannon file.

    Parameters
    ----------
    path : str or path-like
        The file, named in errors.
    attributes : mapping
        Its attributes (``format`` may be bytes).
    expected_format : str
    expected_version : int
    what : str
        What the file should be, for the message (e.g. "dataset file").

    Raises
    ------
    BadFileError
        Naming the file: not an skcannon ``what`` (other or no format), or another version.
    """
    found = attributes.get("format")
    if isinstance(found, bytes):
        found = found.decode(errors="replace")
    if found != expected_format:
        raise BadFileError(path, f"not an skcannon {what} (format {found!r}; expected "
                                 f"{expected_format!r})")
    try:
        version = int(attributes.get("format_version", -1))
    except (TypeError, ValueError):
        version = -1
    if version != expected_version:
        raise BadFileError(path, f"{what} format version {version}; this skcannon reads "
                                 f"version {expected_version}")


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    str
        Hex digest.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_HASH_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def array_digest(arrays: Mapping[str, np.ndarray]) -> str:
    """SHA-256 over named arrays, in name order (name, then the array's bytes).

    Parameters
    ----------
    arrays : mapping of str to ndarray

    Returns
    -------
    str
        Hex digest.
    """
    digest = hashlib.sha256()
    for name in sorted(arrays):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(arrays[name]).tobytes())
    return digest.hexdigest()


def _plain(value):
    """An attribute value as a plain JSON-able Python value (as written or as read back)."""
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def content_digest(attributes: Mapping, arrays: Mapping[str, np.ndarray]) -> str:
    """SHA-256 of a file's whole content: every attribute (but ``checksum``) and every array
    with its name, dtype and shape, in name order. Written files store it as ``checksum``;
    readers recompute it, so any change to data or metadata is detected.

    Parameters
    ----------
    attributes : mapping
        Attribute values as written or as read back (bytes, numpy scalars and arrays give the
        same digest as their plain Python values).
    arrays : mapping of str to ndarray

    Returns
    -------
    str
        Hex digest.
    """
    import json

    digest = hashlib.sha256()
    plain = {str(_plain(key)): _plain(value) for key, value in attributes.items()
             if _plain(key) != "checksum"}
    digest.update(json.dumps(plain, sort_keys=True, default=str).encode())
    for name in sorted(arrays, key=lambda key: str(_plain(key))):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"\0{_plain(name)}\0{array.dtype.str}\0{array.shape}\0".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def write_sealed_hdf5(path: str | Path, attrs: Mapping, arrays: Mapping[str, np.ndarray], *,
                      overwrite: bool = False, compress: bool = False) -> Path:
    """Write an skcannon HDF5 file atomically: ``attrs`` (plus ``checksum``, the
    :func:`content_digest` of everything) on the root, each array a dataset (names may hold
    groups, ``labels/c0``), then the seal (:func:`seal_file`) in the user block.

    Parameters
    ----------
    path : str or path-like
    attrs : mapping
        Root attributes (``format``, ``format_version`` ...).
    arrays : mapping of str to ndarray
    overwrite : bool, default=False
        Allow replacing an existing file (else ``FileExistsError``).
    compress : bool, default=False
        Gzip the 2-D arrays.

    Returns
    -------
    Path
        ``path``.
    """
    import h5py

    attrs = dict(attrs)
    attrs["checksum"] = content_digest(attrs, arrays)
    with atomic_write(path, overwrite=overwrite) as tmp:
        with h5py.File(tmp, "w", track_order=True, userblock_size=SEAL_SIZE) as h5:
            h5.attrs.update(attrs)
            for name, array in arrays.items():
                gzip = compress and np.ndim(array) == 2
                h5.create_dataset(name, data=array, compression="gzip" if gzip else None,
                                  shuffle=gzip)
        seal_file(tmp)
    return Path(path)


def read_sealed_hdf5(path: str | Path, *, expected_format: str, expected_version: int,
                     what: str) -> tuple[dict, dict[str, np.ndarray]]:
    """The attributes and arrays (by path, ``labels/c0``) of a file written by
    :func:`write_sealed_hdf5`: the seal is checked before HDF5 parses anything, then the format
    and version, then the content checksum.

    Parameters
    ----------
    path : str or path-like
    expected_format : str
    expected_version : int
    what : str
        What the file should be, for the messages (e.g. "dataset file").

    Returns
    -------
    attrs : dict
        Root attributes, ``checksum`` included.
    arrays : dict of str to ndarray
        Every dataset, by its path in the file.

    Raises
    ------
    BadFileError
        Naming the file: missing, unsealed or altered, foreign or another version, unreadable.
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise BadFileError(path, f"no such {what}")
    check_seal(path, what)
    try:
        with h5py.File(path, "r") as h5:
            attrs = dict(h5.attrs)
            check_format(path, attrs, expected_format=expected_format,
                         expected_version=expected_version, what=what)
            arrays: dict[str, np.ndarray] = {}
            h5.visititems(lambda name, item: arrays.__setitem__(name, item[()])
                          if isinstance(item, h5py.Dataset) else None)
    except BadFileError:
        raise
    except Exception as exc:
        raise BadFileError(path, f"cannot be read as a {what} ({type(exc).__name__}: "
                                 f"{exc})") from exc
    if content_digest(attrs, arrays) != attrs.get("checksum"):
        raise BadFileError(path, "checksum mismatch: the file was modified or damaged")
    return attrs, arrays


#: Lock file an skcannon run keeps in its output directory.
OUTPUT_LOCK = ".skcannon.lock"


class OutputInUseError(BadFileError):
    """An output directory is in use by another skcannon run.

    Parameters
    ----------
    path : str or path-like
        The output directory.
    problem : str
        Which run holds it.
    """


@contextmanager
def output_lock(directory: str | Path) -> Iterator[Path]:
    """Own an output directory for the duration of a run.

    An exclusive ``flock`` on ``directory/.skcannon.lock`` (which records the owner's pid, host,
    start time and command): a second run into the same directory is refused at once, naming
    the owner. The operating system releases the lock when its process ends, however it ends,
    so a lock left by a killed run is stale and simply taken over. A run that ends normally
    removes the lock file; one that fails leaves it (released, so stale) naming what ran.

    Parameters
    ----------
    directory : str or path-like
        The output directory (created if missing).

    Yields
    ------
    Path
        The lock file.

    Raises
    ------
    OutputInUseError
        Naming the directory and the run that holds it.
    """
    import fcntl

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / OUTPUT_LOCK
    handle = open(path, "a+")  # noqa: SIM115 - held open for the whole run
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            try:
                owner = json.loads(handle.read() or "{}")
            except ValueError:
                owner = {}
            since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(owner.get("started", 0)))
            raise OutputInUseError(directory, f"in use by another skcannon run (pid "
                                              f"{owner.get('pid', '?')} on {owner.get('host', '?')}"
                                              f", since {since}: {owner.get('command', '?')}); "
                                              "wait for it or choose another output directory"
                                   ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "started": time.time(), "command": " ".join(sys.argv)}))
        handle.flush()
        yield path
        path.unlink(missing_ok=True)   # a run that ends normally leaves no lock file behind
    finally:
        handle.close()          # releases the lock
