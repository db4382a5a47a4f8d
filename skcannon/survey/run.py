"""A whole survey on Dask: chunks of files labelled by workers, one Parquet part per chunk
(written atomically, named by the model and the chunk's files, so a re-run skips what is done),
then one merged catalog and a summary.

The engine is ``dask.distributed``: an embedded :class:`distributed.LocalCluster` sized to the
machine by default, or any running cluster by address (``scheduler``) or scheduler file
(``scheduler_file``) - e.g. one started by dask-jobqueue on SLURM (docs/survey.rst). The
model is sent to every worker once (``Client.scatter(..., broadcast=True)``) and passed to each
task as a future, never serialized into the tasks. The model is the fitted Pipeline (its
preprocessing, then the Cannon), so every chunk is preprocessed as the training spectra were.
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

from skcannon import schema
from skcannon.errors import SkcannonError
from skcannon.integrity import atomic_write
from skcannon.persistence import model_digest
from skcannon.survey.catalog import write_catalog
from skcannon.survey.chunk import BAD_FILE, check_output_grid, fill_unfitted, label_chunk
from skcannon.survey.inputs import SurveyInput

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


def chunk_key(digest: str, paths: Sequence[str], options: dict) -> str:
    """A chunk's identity: the model's digest (:func:`skcannon.persistence.model_digest`, which
    covers its preprocessing), its files and the fitting options."""
    text = json.dumps({"model": digest, "paths": list(map(str, paths)),
                       "options": options}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _run_chunk(inputs: list[SurveyInput], part: str, model, options: dict) -> str:
    """Worker task: label a chunk and write its Parquet part atomically; returns the part."""
    table = label_chunk(inputs, model, **options)
    with atomic_write(part, overwrite=True) as tmp:
        table.to_parquet(tmp, index=False)
    return part


def _client(scheduler: str | None, scheduler_file: str | None, n_workers: int | None):
    """A distributed Client: to ``scheduler`` (an address) or ``scheduler_file`` when given,
    else an embedded LocalCluster of single-threaded worker processes (``n_workers``, default
    one per core)."""
    from distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler), None
    if scheduler_file:
        if not Path(scheduler_file).is_file():
            raise SkcannonError(f"--scheduler-file: {scheduler_file}: no such file")
        return Client(scheduler_file=str(scheduler_file)), None
    cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                           dashboard_address=":0" if _has_bokeh() else None)
    return Client(cluster), cluster


def _has_bokeh() -> bool:
    import importlib.util

    return importlib.util.find_spec("bokeh") is not None     # Dask's dashboard needs bokeh


def label_survey(model, inputs: Sequence[SurveyInput | str], output: str | Path, *,
                 product: str | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE,
                 scheduler: str | None = None, scheduler_file: str | Path | None = None,
                 n_workers: int | None = None, n_starts: int = 4, seed: int = 0,
                 progress: bool = True, log=None) -> SurveyResult:
    """Label every spectrum of ``inputs`` with ``model`` on Dask.

    Parameters
    ----------
    model : Pipeline  fitted: preprocessing, then a CannonRegressor (``skcannon.load`` of a
        model file; a bare Cannon is wrapped by :func:`skcannon.pipeline.model.model_pipeline`)
    inputs : sequence of SurveyInput or str  files (any product); a SurveyInput with a URL is
        fetched by its worker when not on disk (see :mod:`skcannon.survey.inputs`)
    output : path  directory for ``parts/``, ``survey.fits``, ``survey_summary.json`` and
        ``survey_failures.json``
    product : str, optional  every file must be this product (default: each file's own)
    chunk_size : int  files per task
    scheduler : str, optional  address of a running Dask scheduler
    scheduler_file : path, optional  scheduler file of a running cluster (``dask scheduler
        --scheduler-file``, dask-jobqueue, dask-mpi); default: an embedded LocalCluster
    n_workers : int, optional  workers of the embedded cluster (default: one per core)
    log : text stream, optional  where progress lines go (default: the current sys.stdout)

    Returns
    -------
    SurveyResult
    """
    log = sys.stdout if log is None else log
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if not inputs:
        raise SkcannonError("no input files")
    inputs = [i if isinstance(i, SurveyInput) else SurveyInput(str(i)) for i in inputs]
    output = Path(output)
    (output / "parts").mkdir(parents=True, exist_ok=True)
    check_output_grid(model, "the model: the spectra its preprocessing gives")   # up front
    options = {"n_starts": n_starts, "seed": seed, "product": product}
    digest = model_digest(model)
    chunks = [inputs[i:i + chunk_size] for i in range(0, len(inputs), chunk_size)]
    parts = [output / "parts" / f"part-{i:06d}-"
             f"{chunk_key(digest, [c.path for c in chunk], options)}.parquet"
             for i, chunk in enumerate(chunks)]
    todo = [i for i, part in enumerate(parts) if not part.is_file()]
    print(f"survey: {len(inputs)} files in {len(chunks)} chunks of <= {chunk_size}; "
          f"{len(chunks) - len(todo)} already done; preprocessing: "
          f"{' -> '.join(name for name, _ in model.steps[:-1]) or 'none'}",
          file=log, flush=True)
    start = time.perf_counter()
    if todo:
        _compute([(chunks[i], parts[i]) for i in todo], model, options,
                 (scheduler, scheduler_file, n_workers), progress, log)
    seconds = time.perf_counter() - start
    catalog, summary = _merge(parts, output, digest, len(todo), seconds,
                              model[-1].cannon_.label_names)
    return SurveyResult(catalog, parts, len(todo), len(chunks) - len(todo), summary)


def _compute(work, model, options, cluster_options, progress, log):
    from distributed import as_completed
    from tqdm.auto import tqdm

    client, cluster = _client(*cluster_options)
    try:
        if cluster is None or _has_bokeh():
            print(f"dask dashboard: {client.dashboard_link}", file=log)
        else:
            print("dask dashboard: not served (pip install bokeh to watch the workers)",
                  file=log)
        model_future = client.scatter(model, broadcast=True)     # sent once per worker
        futures = [client.submit(_run_chunk, chunk, str(part), model_future, options,
                                 key=f"chunk-{part.stem}", retries=2)
                   for chunk, part in work]
        with tqdm(total=len(futures), desc="chunks", unit="chunk", file=sys.stderr,
                  disable=not progress) as bar:
            for future in as_completed(futures):
                future.result()
                bar.update(1)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _merge(parts: list[Path], output: Path, digest: str, computed: int, seconds: float,
           label_names):
    """One FITS catalog from the parts (input order) and the summary JSON."""
    from skcannon._version import __version__

    frames = [pd.read_parquet(part) for part in parts]
    dtypes: dict = {}
    for frame in frames:         # a part of bad files only has no fit columns
        for name, dtype in frame.dtypes.items():
            dtypes.setdefault(name, dtype)
    table = fill_unfitted(pd.concat(frames, ignore_index=True), dtypes)
    table["MODEL_SHA256"] = digest
    table["SKCANNON_VERSION"] = __version__
    catalog = write_catalog(table, output / "survey.fits", label_names)
    flags = [c for c in schema.flag_bits() if c in table]
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
