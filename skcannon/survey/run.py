"""A whole survey on Dask: chunks of files labelled by workers, one Parquet part per chunk
(written atomically, named by the model and the chunk's files, so a re-run skips what is done),
then one merged catalog and a summary.

The engine is ``dask.distributed``: an embedded :class:`distributed.LocalCluster` sized to the
machine by default, or any running cluster by address (``scheduler``) - e.g. one started by
dask-jobqueue on SLURM. The model is sent to every worker once (``Client.scatter(...,
broadcast=True)``) and passed to each task as a future, never serialized into the tasks.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from skcannon.integrity import atomic_write, file_digest
from skcannon.survey.chunk import BAD_FILE, label_chunk

#: Spectra per chunk by default: a few hundred keeps a worker's memory small and flat while
#: amortizing the batched fit.
DEFAULT_CHUNK_SIZE = 256


@dataclass
class SurveyResult:
    """What a survey run produced.

    Attributes
    ----------
    catalog : Path  the merged FITS catalog (one row per input file)
    parts : list of Path  the Parquet parts, in input order
    computed, skipped : int  chunks computed in this run, and found done from an earlier one
    summary : dict  counts per status and flag, throughput, failures
    """

    catalog: Path
    parts: list[Path]
    computed: int
    skipped: int
    summary: dict


def chunk_key(model_digest: str, paths: Sequence[str], options: dict) -> str:
    """A chunk's identity: the model file's digest, its files and the preprocessing options."""
    text = json.dumps({"model": model_digest, "paths": list(map(str, paths)),
                       "options": options}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _run_chunk(paths: list[str], part: str, model, continuum_pixels, options: dict) -> str:
    """Worker task: label a chunk and write its Parquet part atomically; returns the part."""
    table = label_chunk(paths, model, continuum_pixels, **options)
    with atomic_write(part, overwrite=True) as tmp:
        table.to_parquet(tmp, index=False)
    return part


def _client(scheduler: str | None, n_workers: int | None):
    """A distributed Client: to ``scheduler`` when given, else an embedded LocalCluster of
    single-threaded worker processes (``n_workers``, default one per core)."""
    from distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler), None
    cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                           dashboard_address=None)
    return Client(cluster), cluster


def label_survey(model_path: str | Path, paths: Sequence[str], output: str | Path, *,
                 continuum: str | Path, chunk_size: int = DEFAULT_CHUNK_SIZE,
                 scheduler: str | None = None, n_workers: int | None = None,
                 n_starts: int = 4, seed: int = 0, progress: bool = True,
                 log=None) -> SurveyResult:
    """Label every file of ``paths`` with the model at ``model_path`` on Dask.

    Parameters
    ----------
    model_path : path  a model file (``Cannon.save``)
    paths : sequence of str  apStar files
    output : path  directory for ``parts/``, ``survey.fits`` and ``survey_summary.json``
    continuum : path  the continuum pixel file of the model's preprocessing
    chunk_size : int  files per task
    scheduler : str, optional  address of a running Dask scheduler (default: an embedded
        LocalCluster)
    n_workers : int, optional  workers of the embedded cluster (default: one per core)
    log : text stream, optional  where progress lines go (default: the current sys.stdout)

    Returns
    -------
    SurveyResult
    """
    from skcannon.model import Cannon
    from skcannon.preprocessing.continuum import load_continuum_pixels

    log = sys.stdout if log is None else log
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if not paths:
        raise ValueError("no input files")
    output = Path(output)
    (output / "parts").mkdir(parents=True, exist_ok=True)
    model = Cannon.load(model_path)
    pixels = load_continuum_pixels(continuum)
    options = {"n_starts": n_starts, "seed": seed}
    digest = file_digest(model_path)
    chunks = [list(map(str, paths[i:i + chunk_size])) for i in range(0, len(paths), chunk_size)]
    identity = {**options, "continuum": file_digest(continuum)}
    parts = [output / "parts" / f"part-{i:06d}-{chunk_key(digest, chunk, identity)}.parquet"
             for i, chunk in enumerate(chunks)]
    todo = [i for i, part in enumerate(parts) if not part.is_file()]
    print(f"survey: {len(paths)} files in {len(chunks)} chunks of <= {chunk_size}; "
          f"{len(chunks) - len(todo)} already done", file=log, flush=True)
    start = time.perf_counter()
    if todo:
        _compute(todo, chunks, parts, model, pixels, options, scheduler, n_workers, progress, log)
    seconds = time.perf_counter() - start
    catalog, summary = _merge(parts, output, digest, len(todo), seconds)
    return SurveyResult(catalog, parts, len(todo), len(chunks) - len(todo), summary)


def _compute(todo, chunks, parts, model, pixels, options, scheduler, n_workers, progress, log):
    from distributed import as_completed
    from tqdm.auto import tqdm

    client, cluster = _client(scheduler, n_workers)
    try:
        import importlib.util

        if importlib.util.find_spec("bokeh") is not None:    # Dask's dashboard needs bokeh
            print(f"dask dashboard: {client.dashboard_link}", file=log)
        else:
            print("dask dashboard: not served (pip install bokeh to watch the workers)",
                  file=log)
        model_future = client.scatter(model, broadcast=True)     # sent once per worker
        futures = [client.submit(_run_chunk, chunks[i], str(parts[i]), model_future, pixels,
                                 options, key=f"chunk-{parts[i].stem}", retries=2)
                   for i in todo]
        with tqdm(total=len(futures), desc="chunks", unit="chunk", file=sys.stderr,
                  disable=not progress) as bar:
            for future in as_completed(futures):
                future.result()
                bar.update(1)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _merge(parts: list[Path], output: Path, digest: str, computed: int, seconds: float):
    """One FITS catalog from the parts (input order) and the summary JSON."""
    from astropy.table import Table

    from skcannon._version import __version__

    table = pd.concat([pd.read_parquet(part) for part in parts], ignore_index=True)
    table["MODEL_SHA256"] = digest
    table["SKCANNON_VERSION"] = __version__
    catalog = output / "survey.fits"
    with atomic_write(catalog, overwrite=True) as tmp:
        Table.from_pandas(table).write(tmp, format="fits")
    flags = [c for c in ("CONVERGED", "ON_BOUND", "OUTSIDE_TRAINING", "UNLIKE_TRAINING",
                         "STARTS_DISAGREE", "CONFIDENT") if c in table]
    fitted = table[table.STATUS != BAD_FILE]
    failures = table[table.STATUS == BAD_FILE][["PATH", "PROBLEM"]].to_dict("records")
    summary = {"files": int(len(table)), "fitted": int(len(fitted)),
               "bad_files": len(failures),
               "flags": {f: int(np.sum(fitted[f].astype(bool))) for f in flags},
               "chunks_computed": computed, "seconds": round(seconds, 3),
               "spectra_per_s": round(len(table) / seconds, 1) if computed and seconds else None,
               "model_sha256": digest}
    with atomic_write(output / "survey_summary.json", overwrite=True) as tmp:
        tmp.write_text(json.dumps(summary, indent=2))
    with atomic_write(output / "survey_failures.json", overwrite=True) as tmp:
        tmp.write_text(json.dumps(failures, indent=2))
    return catalog, summary
