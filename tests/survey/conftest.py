"""One real Dask cluster (2 single-threaded worker processes on 127.0.0.1) shared by the survey
tests that do not test the embedded cluster itself: starting one costs seconds."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def scheduler():
    """The address of a running LocalCluster's scheduler."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, host="127.0.0.1") as cluster:
        yield cluster.scheduler_address
