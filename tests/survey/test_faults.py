"""Survey faults of issue #27, each a case that gave a silent wrong answer, a lost or mixed
output or a raw traceback: resume by content (a replaced input relabelled, a vanished one
"missing"), one row per file however it is named, sealed parts (a damaged part recomputed with
a warning, never merged), outputs as one set, unfittable spectra flagged, catalog rows naming
no file, non-ASCII paths, a bad scheduler file, worker failures one line per class, Ctrl-C to
the process group, and losing every worker of the cluster."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("distributed")

from skcannon.apogee.archive import apstar_relpath  # noqa: E402
from skcannon.cli import main  # noqa: E402
from skcannon.errors import SkcannonError  # noqa: E402
from skcannon.survey import SurveyInput, label_chunk, label_survey, survey_inputs  # noqa: E402
from skcannon.survey.outputs import COMMIT_DIR, MANIFEST, OUTPUT_FILES, check_outputs  # noqa: E402
from skcannon.survey.parts import read_part  # noqa: E402
from tests.conftest import CONTINUUM_FILE, SHARED_APOGEE  # noqa: E402
from tests.timing import limit  # noqa: E402

#: Size of six of the shared DR13 apStar files (one can replace another byte count for byte
#: count, so only the content digest tells them apart).
SAME_SIZE = 1189440


def _pipeline(path):
    import skcannon
    from skcannon.pipeline.model import model_pipeline

    return model_pipeline(skcannon.load(path), CONTINUUM_FILE)[0]


def _catalog(path) -> pd.DataFrame:
    from astropy.table import Table

    frame = Table.read(path).to_pandas()
    for column in frame.columns:
        if frame[column].dtype == object:
            frame[column] = [v.decode("utf-8") if isinstance(v, bytes) else v
                             for v in frame[column]]
    return frame


@pytest.fixture(scope="module")
def model_file(reference_model, tmp_path_factory):
    return reference_model.save(tmp_path_factory.mktemp("model") / "model.h5")


@pytest.fixture
def copies(tmp_path) -> list[Path]:
    """Copies of the five first shared DR13 apStar files of the same size (writable)."""
    sources = [p for p in sorted((SHARED_APOGEE / "dr13" / "stars").rglob("apStar-r6-*.fits"))
               if p.stat().st_size == SAME_SIZE][:5]
    if len(sources) < 5:
        pytest.skip("the shared DR13 apStar files are absent")
    directory = tmp_path / "in"
    directory.mkdir()
    return [Path(shutil.copy(p, directory / p.name)) for p in sources]


def _survey(model_file, files, out, scheduler, **options):
    options = {"chunk_size": 2, "progress": False, "log": io.StringIO(), **options}
    return label_survey(_pipeline(model_file), [str(f) for f in files], out,
                        scheduler=scheduler, **options)


def test_a_replaced_input_is_relabelled_and_a_vanished_one_is_missing(model_file, copies,
                                                                      tmp_path, scheduler):
    """Another star's file under a done input's name, same size and mtime: the content
    digest sees it; a deleted input is a "missing" row, never its old "fitted" row."""
    files, spare = copies[:4], copies[4]
    first = _survey(model_file, files, tmp_path / "out", scheduler)
    before = _catalog(first.catalog)
    stat = files[0].stat()
    shutil.copyfile(spare, files[0])
    os.utime(files[0], ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (files[0].stat().st_size, files[0].stat().st_mtime_ns) == (stat.st_size,
                                                                      stat.st_mtime_ns)
    files[3].unlink()
    log = io.StringIO()
    again = _survey(model_file, files, tmp_path / "out", scheduler, log=log)
    assert again.computed == 2 and set(again.recomputed) == set(first.parts)
    assert f"input {files[0]} changed" in again.recomputed[first.parts[0]]
    assert f"input {files[3]} vanished" in again.recomputed[first.parts[1]]
    assert f"warning: {first.parts[0]}: input {files[0]} changed" in log.getvalue()
    after = _catalog(again.catalog)
    assert list(after.STATUS) == ["fitted", "fitted", "fitted", "missing"]
    star = spare.name.removeprefix("apStar-r6-").removesuffix(".fits")
    assert after.APOGEE_ID[0] == star != before.APOGEE_ID[0]
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        direct = label_chunk([str(spare)], _pipeline(model_file))
    np.testing.assert_allclose(after.TEFF[0], direct.TEFF[0], rtol=1e-10)
    assert np.isnan(after.TEFF[3]) and "no such file" in after.PROBLEM[3]
    assert not after.CONFIDENT[3] and after.N_PIXELS[3] == -1
    assert again.summary["fitted"] == 3 and again.summary["missing"] == 1


def test_the_same_file_named_two_ways_is_one_input(copies, monkeypatch):
    monkeypatch.chdir(copies[0].parent)
    named = [copies[0].name, str(copies[0]), f"./{copies[0].name}",
             str(copies[0].parent / ".." / copies[0].parent.name / copies[0].name)]
    assert survey_inputs(named) == [SurveyInput(str(copies[0]))]


def _flip_a_bit_that_matters(path: Path) -> None:
    """Flip the first bit past the middle of ``path`` that changes what pyarrow reads (or makes
    it fail), as a disk or a copy might."""
    import pyarrow.parquet as pq

    original = path.read_bytes()
    written = pq.read_table(path)
    for offset in range(len(original) // 2, len(original)):
        data = bytearray(original)
        data[offset] ^= 0x04
        path.write_bytes(bytes(data))
        try:
            if not pq.read_table(path).equals(written):
                return
        except Exception:
            return
    pytest.fail(f"no bit of {path} changes what is read")


def test_damaged_parts_are_recomputed_with_a_warning_never_merged(model_file, copies,
                                                                  tmp_path, scheduler):
    first = _survey(model_file, copies, tmp_path / "out", scheduler, chunk_size=1)
    reference = _catalog(first.catalog)
    parts = first.parts
    data = parts[0].read_bytes()               # the audit's case: a column renamed
    assert b"LOGG_ERR" in data
    parts[0].write_bytes(data.replace(b"LOGG_ERR", b"LOGG_ERP"))
    _flip_a_bit_that_matters(parts[1])
    parts[2].write_bytes(parts[2].read_bytes()[:-100])          # truncated
    pd.read_parquet(parts[4]).to_parquet(parts[3], index=False)  # unsealed, another star's
    log = io.StringIO()
    again = _survey(model_file, copies, tmp_path / "out", scheduler, chunk_size=1, log=log)
    assert set(again.recomputed) == set(parts[:4]) and again.computed == 4
    for part in parts[:4]:
        assert f"warning: {part}: " in log.getvalue()
    assert "not sealed" in again.recomputed[parts[3]]
    pd.testing.assert_frame_equal(_catalog(again.catalog), reference)
    frame, seal = read_part(parts[0])
    assert "LOGG_ERR" in frame and "LOGG_ERP" not in frame and len(seal["inputs"]) == 1


def test_the_outputs_are_one_set_whatever_rename_is_cut_short(model_file, copies, tmp_path,
                                                               scheduler, monkeypatch):
    out = tmp_path / "out"
    _survey(model_file, copies[:2], out, scheduler)
    old = {name: (out / name).read_bytes() for name in (*OUTPUT_FILES, MANIFEST)}
    check_outputs(out)
    real = os.replace

    def killed_at(target):
        def replace(source, destination):
            if Path(destination) == target:
                raise OSError(f"killed before renaming to {target}")
            return real(source, destination)
        return replace

    monkeypatch.setattr(os, "replace", killed_at(out / COMMIT_DIR))    # before the commit
    with pytest.raises(OSError, match="killed"):
        _survey(model_file, copies[:3], out, scheduler)
    check_outputs(out)
    assert {name: (out / name).read_bytes() for name in old} == old     # the old set, whole
    monkeypatch.setattr(os, "replace", killed_at(out / OUTPUT_FILES[1]))   # after the first
    with pytest.raises(OSError, match="killed"):
        _survey(model_file, copies[:3], out, scheduler)
    assert not (out / MANIFEST).exists() and (out / COMMIT_DIR).is_dir()   # no false manifest
    monkeypatch.setattr(os, "replace", real)
    manifest = check_outputs(out)                     # completes the committed new set
    summary = json.loads((out / "survey_summary.json").read_text())
    assert summary["files"] == 3 and len(_catalog(out / "survey.fits")) == 3
    assert set(manifest["files"]) == set(OUTPUT_FILES) and not (out / COMMIT_DIR).exists()
    (out / "survey_failures.json").write_text("[{}]")
    with pytest.raises(SkcannonError, match="survey_failures.json: not the file"):
        check_outputs(out)


def _variant(source: Path, path: Path, change) -> Path:
    from astropy.io import fits

    with fits.open(source) as hdul:
        change(hdul)
        hdul.writeto(path)
    return path


def test_spectra_with_nothing_to_fit_are_unfitted_rows(model_file, apstar_files, tmp_path,
                                                       scheduler):
    source = apstar_files[0]
    changes = {"nan": lambda h: h[1].data.__setitem__(slice(None), np.nan),
               "masked": lambda h: h[3].data.__setitem__(slice(None), 0xFFFF),
               "zeroerr": lambda h: h[2].data.__setitem__(slice(None), 0.0),
               "negerr": lambda h: h[2].data.__setitem__(slice(None), -h[2].data),
               "zeroflux": lambda h: h[1].data.__setitem__(slice(None), 0.0),
               "negflux": lambda h: h[1].data.__setitem__(slice(None), -h[1].data)}
    files = [source] + [_variant(source, tmp_path / f"apStar-dr17-{name}.fits", change)
                        for name, change in changes.items()]
    result = _survey(model_file, files, tmp_path / "out", scheduler, chunk_size=4)
    table = _catalog(result.catalog)
    assert list(table.STATUS) == ["fitted"] + ["unfitted"] * 6
    problems = dict(zip(changes, table.PROBLEM[1:], strict=True))
    assert problems["nan"] == "no finite flux (all NaN or infinite)"
    for name in ("masked", "zeroerr", "negerr"):
        assert problems[name].startswith("no usable pixel"), name
    for name in ("zeroflux", "negflux"):
        assert problems[name].startswith("flux zero or negative"), name
    assert not table.CONFIDENT[1:].any() and (table.N_PIXELS[1:] == -1).all()
    assert result.summary["unfitted"] == 6 and result.summary["fitted"] == 1
    failures = json.loads((tmp_path / "out" / "survey_failures.json").read_text())
    assert [f["STATUS"] for f in failures] == ["unfitted"] * 6


def test_catalog_rows_naming_no_file_are_flagged_rows(model_file, apstar_files, tmp_path,
                                                      scheduler):
    """TELESCOPE '../..' (it would leave the data directory), a blank TELESCOPE or
    APOGEE_ID: flagged rows naming the catalog row, not a traceback."""
    star = apstar_files[0]
    good = {"APOGEE_ID": star.name.removeprefix("apStar-dr17-").removesuffix(".fits"),
            "TELESCOPE": star.parent.parent.name, "FIELD": star.parent.name}
    data = tmp_path / "data"
    local = data / apstar_relpath(good["TELESCOPE"], good["FIELD"], good["APOGEE_ID"])
    local.parent.mkdir(parents=True)
    shutil.copy(star, local)
    rows = [good, {**good, "TELESCOPE": "../.."}, {**good, "TELESCOPE": " "},
            {**good, "APOGEE_ID": ""}]
    table = tmp_path / "stars.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    inputs = survey_inputs([str(table)], directory=data, archive="http://127.0.0.1:9")
    result = label_survey(_pipeline(model_file), inputs, tmp_path / "out", chunk_size=2,
                          scheduler=scheduler, progress=False, log=io.StringIO())
    catalog = _catalog(result.catalog)
    assert list(catalog.STATUS) == ["fitted", "bad file", "bad file", "bad file"]
    assert not (data.parent.parent / "stars").exists()
    for k, needle in ((1, "'../..'"), (2, "invalid telescope"), (3, "invalid apogee_id")):
        assert f"{table} row {k}: " in catalog.PROBLEM[k] and needle in catalog.PROBLEM[k]


def test_non_ascii_paths_and_ids_reach_the_parts_and_the_catalog(model_file, apstar_files,
                                                                  tmp_path, scheduler):
    directory = tmp_path / "étoiles ☆"
    directory.mkdir()
    spectrum = Path(shutil.copy(apstar_files[0], directory / apstar_files[0].name))
    missing = directory / "ñandú.fits"
    result = _survey(model_file, [spectrum, missing], tmp_path / "out", scheduler)
    table = _catalog(result.catalog)
    assert list(table.PATH) == [str(spectrum), str(missing)]
    assert list(table.STATUS) == ["fitted", "missing"] and table.APOGEE_ID[1] == "ñandú"
    assert "APOGEE_ID guessed from the file name" in table.PROBLEM[1]
    from astropy.io import fits

    header = fits.getheader(result.catalog, 1)
    names = {header[f"TTYPE{k}"]: k for k in range(1, header["TFIELDS"] + 1)}
    assert "UTF-8" in header[f"TCOMM{names['PATH']}"]
    failures = json.loads((tmp_path / "out" / "survey_failures.json").read_text("utf-8"))
    assert failures[0]["PATH"] == str(missing)


def test_a_scheduler_file_that_is_not_one_is_a_named_error(model_file, apstar_files, tmp_path,
                                                           capsys):
    bad = tmp_path / "scheduler.json"
    for text in ("{not json", "[]", '{"address": 5}'):
        bad.write_text(text)
        with pytest.raises(SkcannonError, match="--scheduler-file: .*not a Dask scheduler"):
            label_survey(_pipeline(model_file), [str(apstar_files[0])], tmp_path / "o",
                         scheduler_file=bad, progress=False, log=io.StringIO())
    bad.write_text("{not json")
    assert main(["survey", str(model_file), str(apstar_files[0]), "--continuum",
                 str(CONTINUUM_FILE), "--scheduler-file", str(bad), "-o",
                 str(tmp_path / "cli")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and f"error: --scheduler-file: {bad}: not a Dask" in err


def test_worker_failures_are_one_line_per_class(model_file, copies, tmp_path, scheduler,
                                                capfd):
    """Every chunk's part cannot be written (as on a full disk): one line for the failure
    class, no worker tracebacks ("Compute Failed"), exit 2."""
    out = tmp_path / "out"
    first = _survey(model_file, copies[:3], out, scheduler, chunk_size=1)
    for part in first.parts:                 # a directory where each part must go
        part.unlink()
        part.mkdir()
    (out / "survey.fits").unlink()
    capfd.readouterr()
    assert main(["survey", str(model_file), *map(str, copies[:3]), "--continuum",
                 str(CONTINUUM_FILE), "--workers", "1", "--chunk-size", "1", "-o", str(out),
                 "--no-progress"]) == 2
    captured = capfd.readouterr()
    assert "Traceback" not in captured.err and "Compute Failed" not in captured.err
    lines = [line for line in (captured.out + captured.err).splitlines()
             if "IsADirectoryError" in line]
    assert len(lines) == 2, lines          # the class's line, and the command's error
    assert "3 chunk(s) failed with IsADirectoryError: Is a directory" in lines[0]
    assert "skcannon survey: error: 3 of 3 chunks failed" in lines[1]
    assert not (out / "survey.fits").exists()


def test_ctrl_c_to_the_process_group_prints_one_line(model_file, tmp_path):
    """SIGINT to the terminal's whole process group (the driver and every worker process of
    the embedded cluster): exit 130, the one message, no worker tracebacks."""
    sources = sorted((SHARED_APOGEE / "dr13" / "stars").rglob("apStar-r6-*.fits"))
    if not sources:
        pytest.skip("the shared DR13 apStar files are absent")
    files = tmp_path / "files"
    files.mkdir()
    for k in range(60):
        source = sources[k % len(sources)]
        (files / f"apStar-r6-{k:03d}-{source.name[len('apStar-r6-'):]}").symlink_to(source)
    out = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-m", "skcannon.cli", "survey", str(model_file), str(files), "-o",
         str(out), "--continuum", str(CONTINUUM_FILE), "--workers", "2", "--chunk-size", "1",
         "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    deadline = time.monotonic() + limit(120)
    while time.monotonic() < deadline and len(list(out.glob("parts/*.parquet"))) < 2:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err[-2000:]
    lines = [line for line in err.splitlines() if "UserWarning" not in line]
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err[-3000:]
    assert any(line.startswith("skcannon survey: interrupted") for line in lines)


def test_the_survey_survives_losing_all_its_workers(model_file, copies, tmp_path):
    """Every worker process of the cluster SIGKILLed while the survey runs: Dask restarts
    them, recomputes the model task and reruns the lost chunks; every input once."""
    import threading

    from distributed import Client, LocalCluster

    many = [str(p) for p in copies] * 4
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None, host="127.0.0.1") as cluster, \
            Client(cluster) as client:
        victims = list(client.run(os.getpid).values())

        def kill_all_when_busy() -> None:
            deadline = time.monotonic() + limit(60)
            while time.monotonic() < deadline:
                if list((tmp_path / "out" / "parts").glob("*.parquet")):
                    for pid in victims:
                        os.kill(pid, signal.SIGKILL)
                    return
                time.sleep(0.02)

        killer = threading.Thread(target=kill_all_when_busy)
        killer.start()
        result = label_survey(_pipeline(model_file), many, tmp_path / "out", chunk_size=2,
                              scheduler=cluster.scheduler_address, progress=False,
                              log=io.StringIO())
        killer.join()
        client.wait_for_workers(1, timeout=60)
        alive = list(client.run(os.getpid).values())
    assert not set(victims) & set(alive)               # every worker really died
    table = _catalog(result.catalog)
    assert list(table.PATH) == many and (table.STATUS == "fitted").all()
    assert result.computed == len(result.parts) == 10
