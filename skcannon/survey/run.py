"""A whole survey on Dask: chunks of files labelled by workers, one Parquet part per chunk
(written atomically, named by the model and the chunk's files, so a re-run skips what is done),
then one merged catalog and a summary.

The engine is ``dask.distributed``: an embedded :class:`distributed.LocalCluster` sized to the
machine by default, or any running cluster by address (``scheduler``) or scheduler file
(``scheduler_file``) - e.g. one started by dask-jobqueue on SLURM (docs/survey.rst). The
model is one task's result that every chunk task depends on (never serialized into the chunk
tasks): Dask copies it between workers, and recomputes it when every worker holding it is lost,
so the run survives losing all its workers (chunk tasks have Dask's ``retries``). The model is
the fitted Pipeline (its preprocessing, then the Cannon), so every chunk is preprocessed as the
training spectra were.

A re-run reuses a part only when it is sound (:func:`skcannon.survey.parts.part_problem`: its
seal holds and every input is the file it was computed from), else recomputes it with a
warning naming it; the outputs are written as one set (:mod:`skcannon.survey.outputs`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from skcannon import schema
from skcannon.errors import SkcannonError
from skcannon.persistence import model_digest
from skcannon.survey.catalog import write_catalog
from skcannon.survey.chunk import (
    BAD_FILE,
    FITTED,
    MISSING,
    UNFITTED,
    check_output_grid,
    fill_unfitted,
    label_chunk,
)
from skcannon.survey.inputs import SurveyInput, canonical_path
from skcannon.survey.outputs import OUTPUT_FILES, finish_install, write_outputs
from skcannon.survey.parts import PartError, fingerprint, part_problem, read_part, write_part
from skcannon.survey.spectra import (
    model_spectra_path,
    model_spectra_problem,
    write_model_spectra,
)
from skcannon.survey.visits import label_visits_chunk

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
    recomputed : dict  part -> why an earlier run's part could not be reused
    """

    catalog: Path
    parts: list[Path]
    computed: int
    skipped: int
    summary: dict
    recomputed: dict = field(default_factory=dict)


def chunk_key(digest: str, paths: Sequence[str], options: dict) -> str:
    """A chunk's identity: the model's digest (:func:`skcannon.persistence.model_digest`, which
    covers its preprocessing), its files and the fitting options (the files' content is in
    the part's seal, :func:`skcannon.survey.parts.part_problem`)."""
    text = json.dumps({"model": digest, "paths": list(map(str, paths)),
                       "options": options}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _run_chunk(inputs: list[SurveyInput], part: str, model, options: dict,
               save_spectra: bool = False) -> str:
    """Worker task: label a chunk and write its sealed Parquet part (atomically), with the
    fingerprint of each input as read (taken before reading it, or after fetching it); with
    ``save_spectra``, its model-spectra file first (:mod:`skcannon.survey.spectra`)."""
    before = [fingerprint(item.path) for item in inputs]
    key = Path(part).stem.rsplit("-", 1)[-1]
    options = dict(options)
    if options.pop("visits", False):
        table = label_visits_chunk(inputs, model, **options, model_spectra=save_spectra)
    else:
        table = label_chunk(inputs, model, **options, model_spectra=save_spectra)
    if save_spectra:
        table, spectra = table
        write_model_spectra(model_spectra_path(part), key, table, spectra)
    read = [fingerprint(item.path) if seen.get("absent") and item.url else seen
            for item, seen in zip(inputs, before, strict=True)]
    write_part(table, part, key, read)
    return part


def _the_model(model):
    """The task whose result is the model every chunk task uses (recomputable by Dask)."""
    return model


def _client(scheduler: str | None, scheduler_file: str | None, n_workers: int | None):
    """A distributed Client: to ``scheduler`` (an address) or ``scheduler_file`` when given,
    else the embedded cluster (:func:`skcannon.survey.workers.embedded_cluster`, ``n_workers``;
    failures are reported per class)."""
    from distributed import Client

    if scheduler:
        return Client(scheduler), None
    if scheduler_file:
        return _scheduler_file_client(Path(scheduler_file)), None
    from skcannon.survey.workers import IgnoreInterrupts, embedded_cluster

    cluster = embedded_cluster(n_workers)
    client = Client(cluster)

    client.register_plugin(IgnoreInterrupts())     # the driver alone answers Ctrl-C
    return client, cluster


def _scheduler_file_client(path: Path):
    """A Client to the cluster a scheduler file names, the file checked first."""
    from distributed import Client

    try:
        address = json.loads(path.read_text(encoding="utf-8"))["address"]
        if not isinstance(address, str) or "://" not in address:
            raise ValueError(f"address {address!r} is not a scheduler address")
    except FileNotFoundError as exc:
        raise SkcannonError(f"--scheduler-file: {path}: no such file") from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SkcannonError(f"--scheduler-file: {path}: not a Dask scheduler file "
                            f"({type(exc).__name__}: {exc})") from exc
    try:
        return Client(scheduler_file=str(path), timeout="30s")
    except (OSError, TimeoutError) as exc:
        raise SkcannonError(f"--scheduler-file: {path}: no scheduler answers at {address} "
                            f"({type(exc).__name__}: {exc})") from exc


def _has_bokeh() -> bool:
    import importlib.util

    return importlib.util.find_spec("bokeh") is not None     # Dask's dashboard needs bokeh


def label_survey(model, inputs: Sequence[SurveyInput | str], output: str | Path, *,
                 product: str | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE,
                 scheduler: str | None = None, scheduler_file: str | Path | None = None,
                 n_workers: int | None = None, n_starts: int = 4, seed: int = 0,
                 progress: bool = True, log=None, save_model_spectra: bool = False,
                 visits: bool = False) -> SurveyResult:
    """Label every spectrum of ``inputs`` with ``model`` on Dask.

    Parameters
    ----------
    model : Pipeline  fitted: preprocessing, then a CannonRegressor (``skcannon.load`` of a
        model file; a bare Cannon is wrapped by :func:`skcannon.pipeline.model.model_pipeline`)
    inputs : sequence of SurveyInput or str  files (any product); a SurveyInput with a URL is
        fetched by its worker when not on disk (see :mod:`skcannon.survey.inputs`); paths are
        made absolute (:func:`canonical_path`), and an input named twice is labelled twice
    output : path  directory for ``parts/``, ``survey.fits``, ``survey_summary.json``,
        ``survey_failures.json`` and ``survey_manifest.json``
    product : str, optional  every file must be this product (default: each file's own)
    chunk_size : int  files per task
    scheduler : str, optional  address of a running Dask scheduler
    scheduler_file : path, optional  scheduler file of a running cluster (``dask scheduler
        --scheduler-file``, dask-jobqueue, dask-mpi); default: an embedded LocalCluster
    n_workers : int, optional  workers of the embedded cluster (default: one per usable CPU)
    log : text stream, optional  where progress lines and warnings go (default: the current
        sys.stdout)
    save_model_spectra : bool, default=False  also store the best-fit model spectra, a file
        per part, done parts without them recomputed (:mod:`skcannon.survey.spectra`)
    visits : bool, default=False  fit each apStar file's visits jointly, one row per file
        (:mod:`skcannon.survey.visits`; with ``save_model_spectra``, one model spectrum per
        visit)

    Returns
    -------
    SurveyResult
    """
    log = sys.stdout if log is None else log
    inputs = _checked_inputs(inputs, chunk_size)
    output = Path(output)
    (output / "parts").mkdir(parents=True, exist_ok=True)
    finish_install(output)                    # a set an interrupted merge had committed
    check_output_grid(model, "the model: the spectra its preprocessing gives")   # up front
    options = {"n_starts": n_starts, "seed": seed, "product": product,
               **({"visits": True} if visits else {})}      # default runs keep their keys
    digest = model_digest(model)
    chunks, parts = _chunks(inputs, chunk_size, output, digest, options)
    todo, recomputed = _plan(chunks, parts, log, save_model_spectra)
    print(f"survey: {len(inputs)} files in {len(chunks)} chunks of <= {chunk_size}; "
          f"{len(chunks) - len(todo)} already done; preprocessing: "
          f"{' -> '.join(name for name, _ in model.steps[:-1]) or 'none'}",
          file=log, flush=True)
    start = time.perf_counter()
    if todo:
        _compute([(chunks[i], parts[i]) for i in todo], model, options,
                 (scheduler, scheduler_file, n_workers), progress, log, save_model_spectra)
    seconds = time.perf_counter() - start
    catalog, summary = _merge(parts, output, digest, len(todo), seconds,
                              model[-1].cannon_.label_names, save_model_spectra)
    return SurveyResult(catalog, parts, len(todo), len(chunks) - len(todo), summary,
                        recomputed)


def _checked_inputs(inputs, chunk_size: int) -> list[SurveyInput]:
    """The inputs as SurveyInputs with absolute paths, the options checked."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if not inputs:
        raise SkcannonError("no input files")
    return [SurveyInput(canonical_path(i), None, None) if not isinstance(i, SurveyInput)
            else SurveyInput(canonical_path(i.path), i.url, i.problem) for i in inputs]


def _chunks(inputs: list, chunk_size: int, output: Path, digest: str, options: dict
            ) -> tuple[list, list[Path]]:
    """The inputs cut into chunks of ``chunk_size``, and each chunk's part
    (``parts/part-NNNNNN-<chunk key>.parquet``)."""
    chunks = [inputs[i:i + chunk_size] for i in range(0, len(inputs), chunk_size)]
    parts = [output / "parts" / f"part-{i:06d}-"
             f"{chunk_key(digest, [c.path for c in chunk], options)}.parquet"
             for i, chunk in enumerate(chunks)]
    return chunks, parts


def _plan(chunks: list, parts: list[Path], log, spectra: bool = False
          ) -> tuple[list[int], dict]:
    """The chunks to compute: those without a part, and those whose part cannot be reused
    (a warning naming it and why; :func:`part_problem`; with ``spectra``, also a part whose
    model spectra are missing or damaged, :func:`model_spectra_problem`)."""
    todo, recomputed = [], {}
    for i, (chunk, part) in enumerate(zip(chunks, parts, strict=True)):
        if not part.is_file():
            todo.append(i)
            continue
        key = part.stem.rsplit("-", 1)[-1]
        problem = part_problem(part, key, [c.path for c in chunk])
        if problem is None and spectra:
            problem = model_spectra_problem(part, key, len(read_part(part)[0]))
        if problem:
            print(f"warning: {part}: {problem}; recomputing it", file=log, flush=True)
            recomputed[part] = problem
            todo.append(i)
    return todo, recomputed


def _compute(work, model, options, cluster_options, progress, log, spectra=False):
    """Run the chunk tasks; every failed chunk is collected, then one line per failure
    class is printed and the run stops with a :class:`SkcannonError` saying so."""
    client, cluster = _client(*cluster_options)
    try:
        if cluster is None or _has_bokeh():
            print(f"dask dashboard: {client.dashboard_link}", file=log)
        else:
            print("dask dashboard: not served (pip install bokeh to watch the workers)",
                  file=log)
        model_future = client.submit(_the_model, model, key=f"model-{work[0][1].stem}",
                                     pure=False)
        futures = [client.submit(_run_chunk, chunk, str(part), model_future, options,
                                 spectra, key=f"chunk-{part.stem}", retries=2)
                   for chunk, part in work]
        failures = _collect(futures, progress)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    if failures:
        lines = [f"{len(keys)} chunk(s) failed with {kind} (e.g. {keys[0]})"
                 for kind, keys in failures.items()]
        for line in lines:
            print(f"error: {line}", file=log, flush=True)
        raise SkcannonError(f"{sum(map(len, failures.values()))} of {len(work)} chunks "
                            f"failed (finished parts are kept; run again to retry): "
                            + "; ".join(lines))


def _collect(futures, progress: bool) -> dict[str, list[str]]:
    """Wait for every future; failure class (exception type and message, file names left
    out) -> keys of the chunks that failed with it."""
    from distributed import as_completed
    from tqdm.auto import tqdm

    failures: dict[str, list[str]] = {}
    with tqdm(total=len(futures), desc="chunks", unit="chunk", file=sys.stderr,
              disable=not progress) as bar:
        for future in as_completed(futures):
            bar.update(1)
            if future.status == "finished":
                continue
            try:
                error = future.exception()
            except (Exception, asyncio.CancelledError) as cancelled:
                error = cancelled
            kind = type(error).__name__
            text = getattr(error, "strerror", None) or str(error).splitlines()[0][:200] \
                if str(error) else kind
            failures.setdefault(f"{kind}: {text}", []).append(str(future.key))
    return failures


def _merge(parts: list[Path], output: Path, digest: str, computed: int, seconds: float,
           label_names, spectra: bool = False):
    """One FITS catalog from the parts (input order, each checked against its seal), the
    summary (with ``spectra``, the model-spectra files and each one's first catalog row) and
    the failures, written as one set (:func:`write_outputs`)."""
    from skcannon._version import __version__

    frames = []
    for part in parts:
        try:
            frames.append(read_part(part)[0])
        except PartError as exc:        # damaged since it was checked or written: never merged
            raise SkcannonError(f"{part}: {exc}; run again to recompute it") from exc
    dtypes: dict = {}
    for frame in frames:         # a part of bad files only has no fit columns
        for name, dtype in frame.dtypes.items():
            dtypes.setdefault(name, dtype)
    table = fill_unfitted(pd.concat(frames, ignore_index=True), dtypes)
    table["MODEL_SHA256"] = digest
    table["SKCANNON_VERSION"] = __version__
    summary = _summary(table, digest, computed, seconds)
    if spectra:
        first = np.concatenate([[0], np.cumsum([len(f) for f in frames])[:-1]])
        summary["model_spectra"] = [
            {"file": str(model_spectra_path(part).relative_to(output)), "first_row": int(row)}
            for part, row in zip(parts, first, strict=True)]
    failures = table[table.STATUS != FITTED][["PATH", "STATUS", "PROBLEM"]].to_dict("records")
    write_outputs(output, lambda path: write_catalog(table, path, label_names), summary,
                  failures)
    return output / OUTPUT_FILES[0], summary


def _summary(table: pd.DataFrame, digest: str, computed: int, seconds: float) -> dict:
    """Counts per status and per flag (over the fitted rows), throughput."""
    flags = [c for c in schema.flag_bits() if c in table]
    fitted = table[table.STATUS == FITTED]
    return {"files": int(len(table)), "fitted": int(len(fitted)),
            "bad_files": int(np.sum(table.STATUS == BAD_FILE)),
            "missing": int(np.sum(table.STATUS == MISSING)),
            "unfitted": int(np.sum(table.STATUS == UNFITTED)),
            "flags": {f: int(np.sum(fitted[f].astype(bool))) for f in flags},
            "chunks_computed": computed, "seconds": round(seconds, 3),
            "spectra_per_s": round(len(table) / seconds, 1) if computed and seconds else None,
            "model_sha256": digest}
