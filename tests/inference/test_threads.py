"""The thread policy: sized from the usable CPUs, never nested, passed to Dask workers."""

from __future__ import annotations

import os

import numpy as np
import pytest

from skcannon.inference.threads import (
    resolve_n_jobs,
    single_threaded,
    usable_cpus,
    worker_environment,
    worker_layout,
)


def test_usable_cpus_are_the_affinity_not_the_machine():
    assert usable_cpus() == len(os.sched_getaffinity(0))


def test_n_jobs_resolved_from_the_usable_cpus_and_never_nested():
    usable = usable_cpus()
    assert resolve_n_jobs(None) == usable
    assert resolve_n_jobs(None, cap=1) == 1
    assert resolve_n_jobs(3) == 3
    assert resolve_n_jobs(-1) == usable
    assert resolve_n_jobs(-usable - 5) == 1
    with single_threaded():
        assert resolve_n_jobs(None) == 1 and resolve_n_jobs(8) == 1
        from threadpoolctl import threadpool_info

        blas = [pool for pool in threadpool_info() if pool["user_api"] == "blas"]
        assert blas and all(pool["num_threads"] == 1 for pool in blas)
    assert resolve_n_jobs(None) == usable


def test_workers_times_blas_threads_fit_the_usable_cpus():
    usable = usable_cpus()
    for n_workers in (None, 1, 2, usable, 3 * usable):
        workers, blas = worker_layout(n_workers)
        assert blas >= 1 and (workers * blas <= usable or blas == 1)
    assert worker_layout(1) == (1, usable)
    assert worker_environment(2)["OPENBLAS_NUM_THREADS"] == "2"


def test_training_threads_follow_the_policy():
    """Training inside a parallel worker (single_threaded) runs its blocks in the calling
    thread; outside, in a pool of threads when more than one CPU is usable."""
    import threading

    from skcannon.model.training import train_pixels

    rng = np.random.default_rng(0)
    design = np.column_stack([np.ones(60), rng.normal(size=60)])
    flux = design @ rng.normal(size=(2, 40)) + 0.01 * rng.normal(size=(60, 40))
    ivar = np.full_like(flux, 1e4)
    threads = []
    with single_threaded():
        nested = train_pixels(design, flux, ivar, block_pixels=8,
                              progress=lambda n: threads.append(threading.get_ident()))
    assert set(threads) == {threading.get_ident()}
    threads.clear()
    pooled = train_pixels(design, flux, ivar, block_pixels=8, n_jobs=2,
                          progress=lambda n: threads.append(threading.get_ident()))
    assert threading.get_ident() not in threads
    np.testing.assert_array_equal(pooled.s2, nested.s2)


def test_embedded_survey_cluster_gets_its_share_of_blas_threads():
    """A real LocalCluster from the survey's client: each worker's BLAS pool is sized by
    worker_layout (one worker on all usable CPUs: all of them)."""
    pytest.importorskip("distributed")
    from skcannon.survey.run import _client

    def blas_threads():
        from threadpoolctl import threadpool_info

        return max(p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas")

    client, cluster = _client(None, None, 1)
    try:
        threads = list(client.run(blas_threads).values())
    finally:
        client.close()
        cluster.close()
    assert threads == [worker_layout(1)[1]]
