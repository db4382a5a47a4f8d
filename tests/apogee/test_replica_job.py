"""The online job against a local replica of the SDSS services (issue 22).

A real HTTP server on 127.0.0.1 holds the DR17 archive layout: an apo25m apStar, an lco25m
asStar and an apo1m apStar file (real DR17 apStar content, see tests/apogee/replica.py), an
allStarLite-like FITS catalog with NaN nulls, and a SkyServer SQL endpoint answering CSV with
-9999.99 nulls, reached through astroquery's own ``SDSS.query_sql`` (its base URL pointed at the
replica). The counts asserted below are those of the catalog rows written here.
"""

from __future__ import annotations

import threading
import urllib.parse
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.table import Table

from skcannon.apogee.archive import allstar_relpath
from skcannon.apogee.mirror import ArchiveMirror, ArchiveRequestHandler
from skcannon.cli import main
from skcannon.labels import DEFAULT_LABELS
from tests.apogee.replica import build_archive_replica
from tests.conftest import SHARED

#: SkyServer's SQL endpoint for DR17 (astroquery's QUERY_URL_SUFFIX_DR_NEW).
SQL_PATH = "/dr17/en/tools/search/x_results.aspx"
GOOD = {"TEFF": 4600.0, "LOGG": 2.4, "FE_H": -0.1, "MG_FE": 0.05, "SI_FE": 0.02}


class ReplicaState:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sql: list[str] = []          # the SQL statements received
        self.bytes: dict[str, int] = {}   # path -> body bytes sent
        self.skyserver_csv = ""


def replica_handler(state: ReplicaState) -> type:
    class Handler(ArchiveRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            split = urllib.parse.urlsplit(self.path)
            if split.path == SQL_PATH:
                query = urllib.parse.parse_qs(split.query)
                body = state.skyserver_csv.encode()
                with state.lock:
                    state.sql.append(query["cmd"][0])
                    state.bytes[split.path] = state.bytes.get(split.path, 0) + len(body)
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            local = Path(self.translate_path(self.path))
            super().do_GET()
            if local.is_file():
                with self.state_lock():
                    state.bytes[split.path] = (state.bytes.get(split.path, 0)
                                               + local.stat().st_size)

        def state_lock(self):
            return state.lock

    return Handler


def catalog_rows(stars: list[dict]) -> list[dict]:
    """The three replica stars (good giants, with their FILE), then four entries each cut
    for one reason: a NaN label, a dwarf, low SNR, and a field not selected."""
    base = {"SNR": 120.0, "STARFLAG": 0, "ASPCAPFLAG": 0, "EXTRATARG": 0,
            **{f"{k}_ERR": 0.02 for k in GOOD}}
    rows = [{**base, **GOOD, **{k: s[k] for k in ("APOGEE_ID", "TELESCOPE", "FIELD", "FILE")}}
            for s in stars]
    north = stars[0]
    extra = [{"TEFF": np.nan}, {"LOGG": 4.6, "TEFF": 6200.0}, {"SNR": 20.0}, {"FIELD": "M15"}]
    for i, change in enumerate(extra):
        rows.append({**rows[0], "APOGEE_ID": f"2M0000000{i}+0000000",
                     "FILE": f"apStar-dr17-2M0000000{i}+0000000.fits",
                     "FIELD": north["FIELD"], **change})
    return rows


def skyserver_csv(rows: list[dict]) -> str:
    """The rows as SkyServer answers (``#Table1`` then CSV, lower-case SQL names), with its
    NOT NULL sentinel -9999.99 where the FITS catalog has NaN."""
    frame = pd.DataFrame(rows)
    frame = frame[["APOGEE_ID", "TELESCOPE", "FIELD", "SNR", "STARFLAG", "ASPCAPFLAG",
                   *(c for k in DEFAULT_LABELS for c in (k, f"{k}_ERR")), "FILE", "EXTRATARG"]]
    frame = frame.fillna(-9999.99)
    frame.columns = [c.lower() for c in frame.columns]
    return "#Table1\n" + frame.to_csv(index=False)


@pytest.fixture
def replica(apstar_files, tmp_path):
    root = tmp_path / "archive"
    stars = build_archive_replica(root, apstar_files)
    rows = catalog_rows(stars)
    lite = root / allstar_relpath(lite=True)
    lite.parent.mkdir(parents=True)
    Table.from_pandas(pd.DataFrame(rows)).write(lite)
    state = ReplicaState()
    state.skyserver_csv = skyserver_csv(rows)
    with ArchiveMirror(root, routes={}, handler=replica_handler(state)) as mirror:
        yield mirror.url, state, stars, lite


def test_skyserver_through_astroquery_drops_its_sentinels(replica, tmp_path, capsys):
    url, state, stars, _ = replica
    fields = sorted({s["FIELD"] for s in stars})
    status = main(["select", "skyserver", "--skyserver-url", url, "--fields", *fields,
                   "--output", str(tmp_path / "sky.csv")])
    assert status == 0
    out = capsys.readouterr().out
    assert len(state.sql) == 1 and all(f"'{f}'" in state.sql[0] for f in fields)
    assert "ASPCAP version synspec)" in out
    selection = pd.read_csv(tmp_path / "sky.csv")
    assert sorted(selection.APOGEE_ID) == sorted(s["APOGEE_ID"] for s in stars)
    assert (selection.CATALOG_VERSION == "synspec").all()
    assert "1 <= -9000 (null sentinel)" in out      # the -9999.99 TEFF, dropped and counted


@pytest.mark.slow
def test_the_online_job_end_to_end(replica, tmp_path, capsys):
    """``skcannon run`` with no --catalog (the default online source, allStarLite) against
    the replica: 7 catalog entries -> 3 selected (north, south, 1 m) -> 3 downloaded."""
    url, state, stars, lite = replica
    fields = sorted({s["FIELD"] for s in stars})
    status = main(["run", "--archive-url", url, "--shared", str(SHARED), "--fields", *fields,
                   "--data-dir", str(tmp_path / "d"), "--output", str(tmp_path / "o"),
                   "--no-progress", "--n-simulated", "100"])
    assert status == 0
    out = capsys.readouterr().out
    selection = pd.read_csv(tmp_path / "o" / "selection.csv")
    assert sorted(selection.APOGEE_ID) == sorted(s["APOGEE_ID"] for s in stars)
    assert (selection.CATALOG_VERSION == "synspec_rev1").all()
    summary = pd.read_csv(tmp_path / "o" / "data_summary.csv")
    assert summary.status.tolist() == ["downloaded"] * 3
    assert sorted(summary.telescope) == ["apo1m", "apo25m", "lco25m"]
    # the catalog moved: allStarLite only, once; the 4 GB allStar never asked for
    catalog_paths = [p for p in state.bytes if "/aspcap/" in p]
    assert catalog_paths == ["/" + allstar_relpath(lite=True)]
    assert state.bytes[catalog_paths[0]] == lite.stat().st_size
    report = (tmp_path / "o" / "report" / "index.html").read_text()
    assert "synspec_rev1" in report
    assert "1 NaN/inf" in report and "duplicates kept" in report    # the cut table
    assert "3 real spectra fitted" in out
