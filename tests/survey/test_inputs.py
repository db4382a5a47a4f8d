"""Survey inputs and engines: catalog rows fetched by the workers from an archive on
127.0.0.1, every product in one run, the model's own preprocessing, a scheduler file, the
catalog's units, and the dask-jobqueue recipe's job script."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("distributed")

from skcannon.apogee.archive import apstar_relpath  # noqa: E402
from skcannon.apogee.mirror import serve_mirror  # noqa: E402
from skcannon.apogee.preprocessor import preprocessing_recipe  # noqa: E402
from skcannon.cli import main  # noqa: E402
from skcannon.data.build import default_preprocessor  # noqa: E402
from skcannon.data.products import prepare_for_model, read_product  # noqa: E402
from skcannon.errors import SkcannonError  # noqa: E402
from skcannon.survey import SurveyInput, label_survey, survey_inputs  # noqa: E402
from tests.conftest import CONTINUUM_FILE, REPO, SHARED_APOGEE  # noqa: E402
from tests.timing import limit  # noqa: E402


def _pipeline(path, continuum=CONTINUUM_FILE):
    """The fitted Pipeline label_survey takes: the model file's, or (a bare Cannon) the
    standard preprocessing with ``continuum`` (what ``skcannon survey --continuum`` does)."""
    import skcannon
    from skcannon.pipeline.model import model_pipeline

    return model_pipeline(skcannon.load(path), continuum)[0]


def _catalog(table) -> pd.DataFrame:
    from astropy.table import Table

    frame = Table.read(table).to_pandas()
    for column in frame.columns:
        if frame[column].dtype == object:
            frame[column] = [v.decode() if isinstance(v, bytes) else v for v in frame[column]]
    return frame


@pytest.fixture(scope="module")
def model_file(reference_model, tmp_path_factory):
    return reference_model.save(tmp_path_factory.mktemp("model") / "model.h5")


def test_catalog_rows_are_fetched_by_the_workers(model_file, apstar_files, tmp_path,
                                                 scheduler):
    """A table of APOGEE_ID/TELESCOPE/FIELD: nothing on disk, the workers download each file
    from the archive (a real HTTP server on 127.0.0.1) into the data directory; a star the
    archive lacks is a flagged row."""
    rows = [{"APOGEE_ID": p.name.removeprefix("apStar-dr17-").removesuffix(".fits"),
             "TELESCOPE": p.parent.parent.name, "FIELD": p.parent.name} for p in apstar_files]
    rows.append({"APOGEE_ID": "2M00000000+0000000", "TELESCOPE": "apo25m", "FIELD": "nowhere"})
    table = tmp_path / "stars.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    data = tmp_path / "data"
    with serve_mirror(SHARED_APOGEE) as url:
        inputs = survey_inputs([str(table)], directory=data, archive=url)
        assert all(i.url.startswith(url) for i in inputs) and not data.exists()
        result = label_survey(_pipeline(model_file), inputs, tmp_path / "out", chunk_size=2,
                              scheduler=scheduler, progress=False)
    catalog = _catalog(result.catalog)
    assert list(catalog.STATUS) == ["fitted"] * len(apstar_files) + ["bad file"]
    assert "HTTP 404" in catalog.PROBLEM.iloc[-1]
    for row in rows[:-1]:
        local = data / apstar_relpath(row["TELESCOPE"], row["FIELD"], row["APOGEE_ID"])
        original = next(p for p in apstar_files if row["APOGEE_ID"] in p.name)
        assert local.read_bytes() == original.read_bytes()       # downloaded whole, in place
    failures = json.loads((tmp_path / "out" / "survey_failures.json").read_text())
    assert len(failures) == 1 and "2M00000000+0000000" in failures[0]["PATH"]
    again = label_survey(_pipeline(model_file), inputs, tmp_path / "out", chunk_size=2,
                         scheduler=scheduler, progress=False)
    assert again.computed == 0 and not again.recomputed    # a fetched file is what was read


def test_survey_command_fetches_a_catalog_s_files_from_a_mirror(model_file, apstar_files,
                                                                tmp_path, capsys):
    from astropy.table import Table

    catalog = tmp_path / "allStar-like.fits"
    Table({"APOGEE_ID": [p.name[len("apStar-dr17-"):-len(".fits")] for p in apstar_files],
           "TELESCOPE": [p.parent.parent.name for p in apstar_files],
           "FIELD": [p.parent.name for p in apstar_files],
           "SNR": np.full(len(apstar_files), 100.0)}).write(catalog)
    data = tmp_path / "data"
    assert main(["survey", str(model_file), str(catalog), "--mirror", str(SHARED_APOGEE),
                 "--data-dir", str(data), "-o", str(tmp_path / "out"), "--workers", "1",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"{len(apstar_files)} spectra: {len(apstar_files)} fitted, 0 bad files" in out
    assert "note: the model does not record its preprocessing" in out
    assert len(list(data.rglob("apStar-dr17-*.fits"))) == len(apstar_files)
    assert main(["survey", str(model_file), str(catalog), "--data-dir", str(data),
                 "--product", "apVisit", "-o", str(tmp_path / "out2"), "--workers", "1",
                 "--no-progress"]) == 0          # on disk now: nothing fetched; wrong product
    table = _catalog(tmp_path / "out2" / "survey.fits")
    assert (table.STATUS == "bad file").all()
    assert table.PROBLEM.str.contains("is an apStar file, not apVisit").all()


def test_every_product_in_one_run_and_the_catalog_explains_its_columns(model_file, tmp_path,
                                                                       scheduler):
    files = [*sorted((SHARED_APOGEE / "visits").glob("apVisit-*.fits")),
             *sorted((SHARED_APOGEE / "dr13" / "aspcap").rglob("aspcapStar-*.fits"))[:2],
             *sorted((SHARED_APOGEE / "normalized").glob("*.npz"))]
    if len(files) < 5:
        pytest.skip("the shared apVisit/aspcapStar/normalized files are absent")
    result = label_survey(_pipeline(model_file), [str(f) for f in files], tmp_path / "out",
                          chunk_size=3, scheduler=scheduler,
                          progress=False)
    catalog = _catalog(result.catalog)
    spectra = [read_product(f) for f in files]
    assert len(catalog) == sum(len(s) for s in spectra)        # a 3-visit array: 3 rows
    assert list(catalog.PRODUCT) == [s.product for s in spectra for _ in range(len(s))]
    assert list(catalog.SPECTRUM) == [k for s in spectra for k in range(len(s))]
    assert (catalog.STATUS == "fitted").all()
    from astropy.io import fits

    header = fits.getheader(result.catalog, 1)
    columns = {header[f"TTYPE{k}"]: k for k in range(1, header["TFIELDS"] + 1)}
    assert header[f"TUNIT{columns['TEFF']}"] == "K"
    assert "[dex]" in header[f"TCOMM{columns['LOGG']}"]
    assert "covariance of TEFF and LOGG" in header[f"TCOMM{columns['COV_TEFF_LOGG']}"]
    assert all(f"TCOMM{k}" in header for k in columns.values())     # every column described


def test_the_model_s_own_preprocessing_is_applied(reference_model, apstar_files, tmp_path,
                                                  scheduler):
    """A model that records a sine/cosine continuum gets sine/cosine-normalized spectra;
    another --continuum is refused rather than mixed in."""
    recipe = preprocessing_recipe(default_preprocessor(CONTINUUM_FILE, basis="sincos"))
    model = reference_model.save(tmp_path / "sincos.h5", provenance={"preprocessing": recipe})
    files = [str(p) for p in apstar_files]
    result = label_survey(_pipeline(model, None), files, tmp_path / "out", chunk_size=5,
                          scheduler=scheduler, progress=False)
    catalog = _catalog(result.catalog)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        X = {basis: prepare_for_model([read_product(f) for f in files],
                                      default_preprocessor(CONTINUUM_FILE, basis=basis))
             for basis in ("sincos", "chebyshev")}
        fits = {basis: reference_model.infer_labels(x) for basis, x in X.items()}
    np.testing.assert_allclose(catalog.TEFF, fits["sincos"].labels[:, 0], rtol=1e-10)
    assert np.all(np.abs(catalog.TEFF - fits["chebyshev"].labels[:, 0]) > 1e-6)
    other = tmp_path / "other_pixels.npy"
    mask = np.zeros(7214, bool)
    mask[::10] = True
    np.save(other, mask)
    with pytest.raises(SkcannonError, match="other continuum pixels than the model"):
        _pipeline(model, other)
    with pytest.raises(SkcannonError, match="does not record its preprocessing"):
        _pipeline(reference_model.save(tmp_path / "bare.h5"), None)


def test_an_existing_cluster_by_scheduler_file(model_file, apstar_files, tmp_path):
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                      dashboard_address=None, host="127.0.0.1") as cluster, \
            Client(cluster) as client:
        client.write_scheduler_file(str(tmp_path / "scheduler.json"))
        result = label_survey(_pipeline(model_file),
                              [SurveyInput(str(p)) for p in apstar_files], tmp_path / "out",
                              scheduler_file=tmp_path / "scheduler.json", progress=False)
    assert result.summary["fitted"] == len(apstar_files)
    with pytest.raises(SkcannonError, match="--scheduler-file: .*no such file"):
        label_survey(_pipeline(model_file), [str(apstar_files[0])], tmp_path / "o2",
                     scheduler_file=tmp_path / "none.json",
                     progress=False)


@pytest.mark.slow
def test_cli_recipe_dask_scheduler_and_worker_processes(model_file, apstar_files, tmp_path):
    """The docs' CLI recipe on this machine: `dask scheduler --scheduler-file`, a `dask worker`
    process, then `skcannon survey --scheduler-file`."""
    import subprocess
    import sys
    import time

    dask = shutil.which("dask", path=str(REPO / ".venv" / "bin")) or shutil.which("dask")
    if dask is None:
        pytest.skip("the dask command is not installed")
    scheduler_file = tmp_path / "scheduler.json"
    scheduler = subprocess.Popen([dask, "scheduler", "--scheduler-file", str(scheduler_file),
                                  "--host", "127.0.0.1", "--port", "0", "--no-dashboard"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = None
    try:
        deadline = time.monotonic() + limit(60)
        while not scheduler_file.is_file() and time.monotonic() < deadline:
            time.sleep(0.2)
        worker = subprocess.Popen([dask, "worker", "--scheduler-file", str(scheduler_file),
                                   "--nthreads", "1", "--no-dashboard"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        done = subprocess.run(
            [sys.executable, "-m", "skcannon.cli", "survey", str(model_file),
             *map(str, apstar_files), "-o", str(tmp_path / "out"), "--continuum",
             str(CONTINUUM_FILE), "--scheduler-file", str(scheduler_file), "--no-progress"],
            capture_output=True, text=True, timeout=300)
    finally:
        for process in (worker, scheduler):
            if process is not None:
                process.terminate()
                process.wait(timeout=30)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"{len(apstar_files)} spectra: {len(apstar_files)} fitted" in done.stdout


def test_the_slurm_recipe_builds_its_job_script():
    pytest.importorskip("dask_jobqueue")
    import importlib.util

    spec = importlib.util.spec_from_file_location("survey_on_slurm",
                                                  REPO / "examples" / "survey_on_slurm.py")
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    cluster = recipe.make_slurm_cluster(queue="astro", account="apogee", cores=32,
                                        memory="128GB", scheduler_host="127.0.0.1")
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    for line in ("#SBATCH -p astro", "#SBATCH -A apogee", "#SBATCH --cpus-per-task=32",
                 "#SBATCH --exclusive", "--nworkers 32", "--nthreads 1", "tcp://127.0.0.1:"):
        assert line in script, line


def test_ctrl_c_stops_a_survey_and_the_rerun_computes_only_the_rest(model_file, tmp_path,
                                                                    scheduler):
    """SIGINT to `skcannon survey` while it works: exit 130 with the one-line message and no
    traceback, finished parts kept; the next run computes only the missing chunks."""
    import signal
    import subprocess
    import sys
    import time

    sources = sorted((SHARED_APOGEE / "dr13" / "stars").rglob("apStar-r6-*.fits"))
    if not sources:
        pytest.skip("the shared DR13 apStar files are absent")
    files = tmp_path / "files"
    files.mkdir()
    for k in range(80):                               # 80 distinct names, one chunk each
        source = sources[k % len(sources)]
        (files / f"apStar-r6-{k:03d}-{source.name[len('apStar-r6-'):]}").symlink_to(source)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "skcannon.cli", "survey", str(model_file), str(files),
               "-o", str(out), "--continuum", str(CONTINUUM_FILE), "--workers", "1",
               "--chunk-size", "1", "--no-progress"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.monotonic() + limit(120)
    while time.monotonic() < deadline and len(list(out.glob("parts/*.parquet"))) < 3:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "skcannon survey: interrupted" in err
    done = len(list(out.glob("parts/*.parquet")))
    assert 3 <= done < 80 and not (out / "survey.fits").exists()
    result = label_survey(_pipeline(model_file), [str(p) for p in sorted(files.iterdir())],
                          out, chunk_size=1, scheduler=scheduler,
                          progress=False)
    assert result.skipped == done and result.computed == 80 - done
    assert len(_catalog(result.catalog)) == 80
