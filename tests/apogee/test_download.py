"""Downloads over real HTTP from a local server laid out like the archive."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pandas as pd
import pytest

from skcannon.apogee.archive import apstar_relpath
from skcannon.apogee.download import download_apstar, fetch_file
from skcannon.errors import DownloadError
from tests.timing import limit


def selection_of(files) -> pd.DataFrame:
    return pd.DataFrame({
        "APOGEE_ID": [f.stem.removeprefix("apStar-dr17-") for f in files],
        "TELESCOPE": [f.parent.parent.name for f in files],
        "FIELD": [f.parent.name for f in files],
    })


def leftovers(root) -> list:
    return [p for p in root.rglob("*") if p.name.endswith(".part")]


def test_clean_download_gives_identical_files(archive_server, apstar_files, tmp_path):
    url, _ = archive_server
    report = download_apstar(selection_of(apstar_files), archive=url, directory=tmp_path,
                             progress=False)
    assert report.count("downloaded") == len(apstar_files)
    assert report.count("failed") == 0
    for record, source in zip(report.records, apstar_files, strict=True):
        assert record["path"].endswith(apstar_relpath(
            source.parent.parent.name, source.parent.name,
            source.stem.removeprefix("apStar-dr17-")))
        assert Path(record["path"]).read_bytes() == source.read_bytes()
    assert not (tmp_path / "download_failures.json").exists()


def test_rerun_uses_cache_without_requests(archive_server, apstar_files, tmp_path):
    url, state = archive_server
    selection = selection_of(apstar_files)
    download_apstar(selection, archive=url, directory=tmp_path, progress=False)
    before = sum(state.requests.values())
    mtimes = [p.stat().st_mtime_ns for p in tmp_path.rglob("*.fits")]
    report = download_apstar(selection, archive=url, directory=tmp_path, progress=False)
    assert report.count("cached") == len(apstar_files)
    assert sum(state.requests.values()) == before
    assert [p.stat().st_mtime_ns for p in tmp_path.rglob("*.fits")] == mtimes


def test_dropped_connection_is_retried_and_leaves_no_partial_file(
        archive_server, apstar_files, tmp_path):
    url, state = archive_server
    state.drop_first = 1
    report = download_apstar(selection_of(apstar_files), archive=url, directory=tmp_path,
                             backoff=0.01, progress=False)
    assert report.count("downloaded") == len(apstar_files)
    assert all(n == 2 for n in state.requests.values())  # one drop, one good retry each
    for record, source in zip(report.records, apstar_files, strict=True):
        assert Path(record["path"]).read_bytes() == source.read_bytes()
    assert leftovers(tmp_path) == []


def test_connection_dropped_every_time_fails_cleanly(archive_server, apstar_files, tmp_path):
    url, state = archive_server
    state.drop_first = 99
    report = download_apstar(selection_of(apstar_files[:1]), archive=url, directory=tmp_path,
                             retries=2, backoff=0.01, progress=False)
    assert report.count("failed") == 1
    assert "connection closed after" in report.failed[0]["error"]
    assert list(tmp_path.rglob("*.fits")) == []
    assert leftovers(tmp_path) == []
    failures = json.loads((tmp_path / "download_failures.json").read_text())
    assert failures[0]["apogee_id"] == report.failed[0]["apogee_id"]


def test_404_is_reported_and_batch_goes_on(archive_server, apstar_files, tmp_path):
    url, state = archive_server
    selection = pd.concat([
        selection_of(apstar_files),
        pd.DataFrame({"APOGEE_ID": ["2M00000000+0000000"], "TELESCOPE": ["apo25m"],
                      "FIELD": ["NOWHERE"]}),
    ], ignore_index=True)
    report = download_apstar(selection, archive=url, directory=tmp_path, progress=False)
    assert report.count("downloaded") == len(apstar_files)
    (failed,) = report.failed
    assert failed["apogee_id"] == "2M00000000+0000000"
    assert "HTTP 404" in failed["error"]
    assert "NOWHERE" in failed["url"]
    # a 404 is final: requested once, not retried
    assert sum(v for k, v in state.requests.items() if "NOWHERE" in k) == 1
    assert "1 failed" in report.summary()


def test_corrupt_file_is_rejected_and_not_kept(archive_server, apstar_files, tmp_path):
    url, state = archive_server
    bad, good = apstar_files[0], apstar_files[-1]
    state.corrupt = {bad.name}
    report = download_apstar(selection_of(apstar_files), archive=url, directory=tmp_path,
                             retries=1, backoff=0.01, progress=False)
    statuses = {r["apogee_id"]: r for r in report.records}
    bad_record = statuses[bad.stem.removeprefix("apStar-dr17-")]
    assert bad_record["status"] == "failed"
    assert "not valid" in bad_record["error"]
    assert not list(tmp_path.rglob(bad.name))
    if good != bad:
        assert statuses[good.stem.removeprefix("apStar-dr17-")]["status"] == "downloaded"
    assert leftovers(tmp_path) == []


def test_unreachable_archive_names_the_url(apstar_files, tmp_path):
    with socket.socket() as sock:  # a port with nothing listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x.fits"
    with pytest.raises(DownloadError, match=f"127.0.0.1:{port}/x.fits") as info:
        fetch_file(url, tmp_path / "x.fits", retries=1, backoff=0.01, timeout=2)
    assert "refused" in str(info.value).lower()
    assert not (tmp_path / "x.fits").exists()


def test_bad_file_under_final_name_is_fetched_again(archive_server, apstar_files, tmp_path):
    url, _ = archive_server
    selection = selection_of(apstar_files[:1])
    first = download_apstar(selection, archive=url, directory=tmp_path, progress=False)
    path = first.records[0]["path"]
    with open(path, "r+b") as handle:  # someone truncated it by hand
        handle.truncate(1000)
    again = download_apstar(selection, archive=url, directory=tmp_path, progress=False)
    assert again.records[0]["status"] == "downloaded"
    assert Path(path).read_bytes() == apstar_files[0].read_bytes()


def test_interrupted_run_resumes_only_missing_files(archive_server, apstar_files, tmp_path):
    if len(apstar_files) < 2:
        pytest.skip("needs two apStar files")
    url, state = archive_server
    selection = selection_of(apstar_files)
    download_apstar(selection.iloc[:1], archive=url, directory=tmp_path, progress=False)
    # a partial file from an interrupted transfer of the second one
    rel = apstar_relpath("apo25m", selection.FIELD[1], selection.APOGEE_ID[1])
    (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / rel).with_name(".x.part").write_bytes(b"half")
    state.requests.clear()
    report = download_apstar(selection, archive=url, directory=tmp_path, progress=False)
    assert [r["status"] for r in report.records] == ["cached", "downloaded"]
    assert len(state.requests) == 1 and selection.APOGEE_ID[1] in next(iter(state.requests))


def test_mirror_index_lists_only_dr17_apstar_files(apstar_files):
    """The shared mirror also holds DR13 apStar-r6 files, which live at no DR17 archive path:
    indexing them made the offline main job try (and fail) to download them."""
    from skcannon.apogee.mirror import index_apstar_files
    from tests.conftest import SHARED_APOGEE

    index = index_apstar_files(SHARED_APOGEE)
    assert sorted(index.APOGEE_ID) == sorted(f.stem.removeprefix("apStar-dr17-")
                                            for f in apstar_files)


def test_truncated_bodies_without_content_length_are_rejected_in_parallel(
        archive_server, apstar_files, tmp_path):
    """No Content-Length, half the body, connection closed: only the file's own FITS headers
    can tell. With 4 worker threads every attempt must be rejected (the check once relied on
    warnings.catch_warnings, which is not thread-safe)."""
    url, state = archive_server
    state.no_length_half = {f.name for f in apstar_files}
    selection = pd.concat([selection_of(apstar_files)] * 1, ignore_index=True)
    for run in range(3):
        report = download_apstar(selection, archive=url, directory=tmp_path / str(run),
                                 progress=False, n_workers=4, retries=2, backoff=0.0)
        assert report.count("failed") == len(selection), report.records
        assert all("truncated" in r["error"] for r in report.failed)
        assert not any((tmp_path / str(run)).rglob("apStar-*.fits"))


def test_html_bodies_and_server_errors(archive_server, apstar_files, tmp_path):
    url, state = archive_server
    state.html = {apstar_files[0].name}
    state.error_first = 2                   # two 500s, then the real file
    report = download_apstar(selection_of(apstar_files), archive=url, directory=tmp_path,
                             progress=False, retries=3, backoff=0.0)
    by_id = {r["apogee_id"]: r for r in report.records}
    first = by_id[apstar_files[0].stem.removeprefix("apStar-dr17-")]
    assert first["status"] == "failed" and "not a FITS file" in first["error"]
    others = [r for r in report.records if r is not first]
    assert all(r["status"] == "downloaded" for r in others)


def test_a_partial_download_resumes_with_a_range_request(archive_server, apstar_files,
                                                         tmp_path):
    from skcannon.apogee.download import partial_name

    url, state = archive_server
    source = apstar_files[0]
    selection = selection_of(apstar_files[:1])
    rel = apstar_relpath("apo25m", selection.FIELD[0], selection.APOGEE_ID[0])
    dest = tmp_path / rel
    dest.parent.mkdir(parents=True)
    data = source.read_bytes()
    partial_name(dest).write_bytes(data[:100_000])          # left by an interrupted run
    report = download_apstar(selection, archive=url, directory=tmp_path, progress=False)
    assert report.records[0]["status"] == "downloaded"
    assert state.ranges == ["bytes=100000-"]
    assert dest.read_bytes() == data and not partial_name(dest).exists()


def test_ctrl_c_stops_a_download_at_once_and_the_next_run_resumes(
        archive_server, apstar_files, tmp_path):
    """SIGINT to `skcannon download` while a transfer stalls: exit 130 within ~2 s, one line,
    no traceback, the partial file kept; the next run resumes it with a Range request."""
    import signal
    import subprocess
    import sys
    import time

    from skcannon.apogee.download import partial_name

    url, state = archive_server
    state.stall = {f.name for f in apstar_files}
    selection = selection_of(apstar_files)
    selection.to_csv(tmp_path / "selection.csv", index=False)
    data_dir = tmp_path / "data"
    command = [sys.executable, "-m", "skcannon.cli", "download", str(tmp_path / "selection.csv"),
               "--archive-url", url, "--data-dir", str(data_dir), "--no-progress",
               "--workers", "1"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.monotonic() + limit(60)
    partials = []
    while time.monotonic() < deadline and not partials:
        time.sleep(0.1)
        partials = [p for p in data_dir.rglob(".*.part") if p.stat().st_size >= 65536]
    assert partials, "the download never started"
    stop_within, wait_at_most = limit(3.0), limit(30)   # measured before the clock starts
    sent = time.monotonic()
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=wait_at_most)
    assert time.monotonic() - sent < stop_within
    assert process.returncode == 130
    assert "Traceback" not in err and err.strip().count("\n") == 0
    assert "interrupted" in err
    assert partials[0].stat().st_size == 65536              # kept for the next run
    assert not any(data_dir.rglob("apStar-*.fits"))
    state.stall = set()
    state.ranges.clear()
    report = download_apstar(selection, archive=url, directory=data_dir, progress=False)
    assert all(r["status"] == "downloaded" for r in report.records)
    assert "bytes=65536-" in state.ranges
    for source in apstar_files:
        rel = apstar_relpath("apo25m", source.parent.name,
                             source.stem.removeprefix("apStar-dr17-"))
        assert (data_dir / rel).read_bytes() == source.read_bytes()
        assert not partial_name(data_dir / rel).exists()


# -- DR17 file names per telescope (issue 22: every southern star 404'd) ---------------------
def test_dr17_paths_per_telescope_follow_the_archive_prefix():
    from skcannon.apogee.archive import apstar_relpath, telescope_prefix

    base = "dr17/apogee/spectro/redux/dr17/stars"
    assert apstar_relpath("apo25m", "M15", "2M1") == f"{base}/apo25m/M15/apStar-dr17-2M1.fits"
    assert apstar_relpath("apo1m", "calibration", "2M1") == (
        f"{base}/apo1m/calibration/apStar-dr17-2M1.fits")
    assert apstar_relpath("lco25m", "47TUC", "2M1") == f"{base}/lco25m/47TUC/asStar-dr17-2M1.fits"
    assert [telescope_prefix(t) for t in ("apo25m", "apo1m", "lco25m", "lco1m", "x")] == [
        "ap", "ap", "as", "as", "ap"]
    # the catalog's own FILE column wins; NaN or "" mean "not given"
    assert apstar_relpath("lco25m", "F", "2M1", file="asStar-dr17-2M1b.fits").endswith(
        "/lco25m/F/asStar-dr17-2M1b.fits")
    assert apstar_relpath("lco25m", "F", "2M1", file=float("nan")).endswith(
        "/asStar-dr17-2M1.fits")
    assert apstar_relpath("lco25m", "F", "2M1", file=" ").endswith("/asStar-dr17-2M1.fits")
    with pytest.raises(ValueError, match="file"):
        apstar_relpath("lco25m", "F", "2M1", file="../../x.fits")


def test_northern_southern_and_1m_files_all_download(apstar_files, tmp_path):
    """apo25m, apo1m and lco25m files named as in DR17, over real HTTP on 127.0.0.1; the mirror
    index finds the same files and the downloader fetches what it lists."""
    from skcannon.apogee.mirror import ArchiveMirror, index_apstar_files
    from tests.apogee.replica import build_archive_replica

    rows = build_archive_replica(tmp_path / "archive", apstar_files)
    selection = pd.DataFrame(rows)[["APOGEE_ID", "TELESCOPE", "FIELD"]]
    with ArchiveMirror(tmp_path / "archive", routes={}) as mirror:
        report = download_apstar(selection, archive=mirror.url, directory=tmp_path / "a",
                                 progress=False)
        assert [r["status"] for r in report.records] == ["downloaded"] * 3, report.failed
        assert [Path(r["path"]).name for r in report.records] == [r["FILE"] for r in rows]
        assert Path(report.records[1]["path"]).name.startswith("asStar-dr17-")
        for record, row in zip(report.records, rows, strict=True):
            assert Path(record["path"]).read_bytes() == row["path"].read_bytes()
        index = index_apstar_files(tmp_path / "archive")
        assert sorted(index.FILE) == sorted(r["FILE"] for r in rows)
        assert sorted(index.TELESCOPE) == ["apo1m", "apo25m", "lco25m"]
        again = download_apstar(index, archive=mirror.url, directory=tmp_path / "b",
                                progress=False)
        assert again.count("downloaded") == 3


def test_the_catalog_file_column_is_honoured(apstar_files, tmp_path):
    from skcannon.apogee.mirror import ArchiveMirror
    from tests.apogee.replica import build_archive_replica

    rows = build_archive_replica(tmp_path / "archive", apstar_files)
    south = rows[1]
    odd = south["path"].with_name("asStar-dr17-renamed.fits")   # a name no rule derives
    south["path"].rename(odd)
    selection = pd.DataFrame([{**south, "FILE": odd.name}])
    with ArchiveMirror(tmp_path / "archive", routes={}) as mirror:
        report = download_apstar(selection, archive=mirror.url, directory=tmp_path / "d",
                                 progress=False)
        without = download_apstar(selection.drop(columns="FILE"), archive=mirror.url,
                                  directory=tmp_path / "e", progress=False, retries=0)
    assert report.count("downloaded") == 1 and report.records[0]["path"].endswith(odd.name)
    assert without.count("failed") == 1 and "404" in without.failed[0]["error"]
