"""The survey on a real embedded Dask LocalCluster: every input once, bad files flagged, labels
equal to Cannon.infer_labels, a re-run computes nothing, a lost part is recomputed alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("distributed")

from skcannon.apogee.reader import read_apstar, stack_apstar  # noqa: E402
from skcannon.cli import main  # noqa: E402
from skcannon.data.build import default_preprocessor, normalize_spectra  # noqa: E402
from skcannon.survey import label_survey  # noqa: E402
from tests.conftest import CONTINUUM_FILE, SHARED_APOGEE  # noqa: E402
from tests.timing import limit  # noqa: E402


def _pipeline(path, continuum=CONTINUUM_FILE):
    """The fitted Pipeline label_survey takes: the model file's, or (a bare Cannon) the
    standard preprocessing with ``continuum`` (what ``skcannon survey --continuum`` does)."""
    import skcannon
    from skcannon.pipeline.model import model_pipeline

    return model_pipeline(skcannon.load(path), continuum)[0]


@pytest.fixture(scope="module")
def survey_inputs(reference_model, tmp_path_factory):
    """The real DR17 and DR13 apStar files, a corrupt one and a missing one (STATUS "bad file"
    and "missing"); the model file."""
    directory = tmp_path_factory.mktemp("survey")
    files = sorted(map(str, (SHARED_APOGEE / "dr17" / "stars").rglob("apStar-*.fits")))
    files += sorted(map(str, (SHARED_APOGEE / "dr13" / "stars").rglob("apStar-*.fits")))
    if len(files) < 4:
        pytest.skip("the shared apStar files are absent")
    corrupt = directory / "apStar-dr17-2M00000000+0000000.fits"
    corrupt.write_bytes(b"SIMPLE  =                    T" + b"\0" * 100)
    files.insert(3, str(corrupt))
    files.append(str(directory / "apStar-dr17-missing.fits"))
    model = reference_model.save(directory / "model.h5")
    return files, model


def test_survey_labels_every_file_once_and_matches_infer_labels(survey_inputs, reference_model,
                                                                tmp_path):
    files, model = survey_inputs
    result = label_survey(_pipeline(model), files, tmp_path / "out",
                          chunk_size=4, n_workers=2, progress=False)
    from astropy.table import Table

    table = Table.read(result.catalog).to_pandas()
    assert list(table.PATH.str.decode("utf-8") if table.PATH.dtype == object
                and isinstance(table.PATH[0], bytes) else table.PATH) == files
    status = dict(zip(files, [s.decode() if isinstance(s, bytes) else s for s in table.STATUS],
                      strict=True))
    assert status[files[3]] == "bad file" and status[files[-1]] == "missing"
    assert result.summary["bad_files"] == 1 and result.summary["missing"] == 1
    assert result.summary["fitted"] == len(files) - 2
    # the same fits as Cannon.infer_labels on the same batches (chunks of 4 inputs)
    labels, unlike = [], []
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):          # the workers' BLAS: one thread, the same sums
        for start in range(0, len(files), 4):
            good = [f for f in files[start:start + 4] if status[f] == "fitted"]
            direct = reference_model.infer_labels(normalize_spectra(
                stack_apstar([read_apstar(f) for f in good]),
                default_preprocessor(CONTINUUM_FILE)).normalized)
            labels.append(direct.labels)
            unlike.append(direct.unlike_training)
    fitted = table[[s == "fitted" for s in status.values()]]
    for i, name in enumerate(reference_model.label_names):
        np.testing.assert_allclose(fitted[name].to_numpy(), np.vstack(labels)[:, i],
                                   rtol=1e-10, atol=0)
    np.testing.assert_array_equal(fitted.UNLIKE_TRAINING.to_numpy(), np.concatenate(unlike))
    failures = pd.read_json(tmp_path / "out" / "survey_failures.json")
    assert "no such file" in " ".join(failures.PROBLEM) and "truncated" in " ".join(
        failures.PROBLEM)


def test_a_rerun_computes_nothing_and_a_lost_part_alone(survey_inputs, tmp_path, scheduler):
    files, model = survey_inputs
    first = label_survey(_pipeline(model), files, tmp_path / "out",
                         chunk_size=4, scheduler=scheduler, progress=False)
    stamps = {p: p.stat().st_mtime_ns for p in first.parts}
    again = label_survey(_pipeline(model), files, tmp_path / "out",
                         chunk_size=4, scheduler=scheduler, progress=False)
    assert again.computed == 0 and again.skipped == len(first.parts)
    assert {p: p.stat().st_mtime_ns for p in again.parts} == stamps
    first.parts[1].unlink()                        # as if interrupted before this part
    resumed = label_survey(_pipeline(model), files, tmp_path / "out",
                           chunk_size=4, scheduler=scheduler, progress=False)
    assert resumed.computed == 1
    assert {p: p.stat().st_mtime_ns for p in resumed.parts if p != first.parts[1]} == {
        p: s for p, s in stamps.items() if p != first.parts[1]}


def test_survey_command_on_the_shared_mirror(survey_inputs, tmp_path, capsys):
    _, model = survey_inputs
    assert main(["survey", str(model), str(SHARED_APOGEE / "dr13" / "stars"), "-o",
                 str(tmp_path / "s"), "--continuum", str(CONTINUUM_FILE), "--workers", "1",
                 "--chunk-size", "5", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "12 spectra: 12 fitted, 0 bad files" in out and "UNLIKE_TRAINING   11" in out
    assert (tmp_path / "s" / "survey.fits").is_file()
    import importlib.util

    if importlib.util.find_spec("bokeh") is None:     # no dashboard link that would not answer
        assert "dask dashboard: not served" in out and "dask dashboard: http" not in out
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["survey", str(model), str(empty), "-o", str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and f"{empty}: no spectrum files" in err


def test_a_killed_worker_loses_nothing(survey_inputs, tmp_path):
    """A worker process killed while the survey runs on an existing cluster (--scheduler):
    Dask reruns its tasks elsewhere and every input is in the catalog exactly once."""
    import os
    import signal
    import threading
    import time

    from astropy.table import Table
    from distributed import Client, LocalCluster

    files, model = survey_inputs
    many = files * 6                                    # enough chunks to outlive a worker
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        pids = list(client.run(os.getpid).values())
        victim = pids[0]

        def kill_when_busy() -> None:
            deadline = time.monotonic() + limit(60)
            while time.monotonic() < deadline:
                if list((tmp_path / "out" / "parts").glob("*.parquet")):
                    os.kill(victim, signal.SIGKILL)
                    return
                time.sleep(0.05)

        killer = threading.Thread(target=kill_when_busy)
        killer.start()
        result = label_survey(_pipeline(model), many, tmp_path / "out",
                              chunk_size=3, scheduler=cluster.scheduler_address,
                              progress=False)
        killer.join()
        alive = list(client.run(os.getpid).values())
    assert victim not in alive                          # the worker really died (and was replaced)
    table = Table.read(result.catalog).to_pandas()
    paths = [p.decode() if isinstance(p, bytes) else p for p in table.PATH]
    assert paths == [str(p) for p in many]
    assert result.computed == len(result.parts)
