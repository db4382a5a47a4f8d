"""A survey's outputs written as one set: ``survey.fits``, ``survey_summary.json`` and
``survey_failures.json``, then ``survey_manifest.json`` naming the SHA-256 of each.

The new set is first written whole into a staging directory beside them (each file through
:func:`atomic_write`), with its manifest; renaming that directory to ``.survey-commit`` is the
commit point. Installing then removes the old manifest and renames the files into place in a
fixed order, the manifest last. A run killed before the commit point leaves the old set as it
was; one killed after it leaves ``.survey-commit``, which the next :func:`finish_install` (run
by :func:`check_outputs` and by every survey run) completes. So a reader who checks the
manifest (:func:`check_outputs`) sees the old set or the new one, never a mixture.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import uuid
from collections.abc import Callable
from pathlib import Path

from skcannon.errors import SkcannonError
from skcannon.integrity import atomic_write, file_digest

#: The set's files, in the order they are installed; the manifest is installed after them.
OUTPUT_FILES = ("survey.fits", "survey_failures.json", "survey_summary.json")
MANIFEST = "survey_manifest.json"
#: The staged set once committed (renamed into place by :func:`finish_install`).
COMMIT_DIR = ".survey-commit"
#: A set being written: ``.survey-staging-<host>-<pid>-<random>``.
STAGING_PREFIX = ".survey-staging-"


def write_outputs(output: Path, catalog: Callable[[Path], object], summary: dict,
                  failures: list) -> None:
    """Write the set into ``output`` (see the module docstring).

    Parameters
    ----------
    output : Path  the survey's output directory
    catalog : callable(Path)  writes the FITS catalog to the path it is given
    summary : dict  the summary (JSON)
    failures : list of dict  the rows without a fit (JSON)
    """
    finish_install(output)                       # an earlier run's commit, if it was cut short
    remove_dead_staging(output)
    owner = f"{socket.gethostname()}-{os.getpid()}"
    staging = output / f"{STAGING_PREFIX}{owner}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        catalog(staging / OUTPUT_FILES[0])
        for name, value in ((OUTPUT_FILES[1], failures), (OUTPUT_FILES[2], summary)):
            with atomic_write(staging / name, overwrite=True) as tmp:
                tmp.write_text(json.dumps(value, indent=2, ensure_ascii=False),
                               encoding="utf-8")
        manifest = {"files": {name: file_digest(staging / name) for name in OUTPUT_FILES}}
        with atomic_write(staging / MANIFEST, overwrite=True) as tmp:
            tmp.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        os.replace(staging, output / COMMIT_DIR)           # the commit point
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    finish_install(output)


def remove_dead_staging(output: Path) -> None:
    """Remove the staging directories of killed runs on this host (their pid is gone); those
    of live runs, or of other hosts sharing the directory, are left alone.

    Parameters
    ----------
    output : Path
    """
    host = socket.gethostname()
    for staging in Path(output).glob(f"{STAGING_PREFIX}*"):
        owner, _, rest = staging.name[len(STAGING_PREFIX):].rpartition("-")[0].rpartition("-")
        if owner != host or not rest.isdigit():
            continue
        try:
            os.kill(int(rest), 0)
        except ProcessLookupError:
            shutil.rmtree(staging, ignore_errors=True)
        except PermissionError:                  # alive, another user's
            continue


def finish_install(output: Path) -> None:
    """Install a committed set (``.survey-commit``) into ``output``, if there is one: the old
    manifest first removed, the files renamed into place in order, the manifest last.

    Parameters
    ----------
    output : Path
    """
    commit = Path(output) / COMMIT_DIR
    if not commit.is_dir():
        return
    (Path(output) / MANIFEST).unlink(missing_ok=True)
    for name in (*OUTPUT_FILES, MANIFEST):
        if (commit / name).exists():             # absent: installed before an interruption
            os.replace(commit / name, Path(output) / name)
    shutil.rmtree(commit)


def check_outputs(output: str | Path) -> dict:
    """Check that ``output`` holds one complete set of survey outputs (completing an install
    that was cut short first).

    Parameters
    ----------
    output : str or path-like
        A survey's output directory.

    Returns
    -------
    dict
        The manifest: ``{"files": {name: sha256}}``.

    Raises
    ------
    SkcannonError
        Naming the file: no manifest (no survey finished here, or an older skcannon's), or a
        file that is absent or not the one the manifest names.
    """
    output = Path(output)
    finish_install(output)
    try:
        manifest = json.loads((output / MANIFEST).read_text(encoding="utf-8"))
        files = dict(manifest["files"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SkcannonError(f"{output / MANIFEST}: no complete set of survey outputs "
                            f"({type(exc).__name__}: {exc})") from exc
    for name in OUTPUT_FILES:
        path = output / name
        if not path.is_file() or files.get(name) != file_digest(path):
            raise SkcannonError(f"{path}: not the file of the set {MANIFEST} names (modified, "
                                "or left by another run)")
    return manifest
