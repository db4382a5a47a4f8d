"""The thread policy: sized from the usable CPUs, never nested, passed to Dask workers."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from skcannon.inference.threads import (
    BLAS_ENVIRONMENT,
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

    before = {name: os.environ.get(name) for name in BLAS_ENVIRONMENT}
    client, cluster = _client(None, None, 1)
    try:
        threads = list(client.run(blas_threads).values())
        trim = [nanny.pre_spawn_env.get("MALLOC_TRIM_THRESHOLD_")     # what each worker got
                for nanny in cluster.workers.values()]
        preloaded = list(client.run(lambda: "skcannon.survey.chunk" in sys.modules).values())
    finally:
        client.close()
        cluster.close()
    assert threads == [worker_layout(1)[1]]
    # not Dask's 65536, which turns off glibc's adaptive mmap threshold (1.5x slower chunks)
    assert trim == [None]
    assert preloaded == [True]                  # the chunk code imported as the worker started
    # Dask's nanny set OMP_NUM_THREADS=1 ... in this process to spawn the workers: undone,
    # so that the policy (policy_threads) does not mistake it for the user's choice
    assert {name: os.environ.get(name) for name in BLAS_ENVIRONMENT} == before


def _blas_threads() -> set[int]:
    """The threads of every BLAS pool loaded in this process (threadpoolctl)."""
    from threadpoolctl import threadpool_info

    return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}


def test_policy_threads_are_the_usable_cpus_or_fewer_where_the_user_says(monkeypatch):
    from skcannon.inference.threads import command_threads, policy_threads

    for name in BLAS_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    assert policy_threads() == usable_cpus()
    with single_threaded():
        assert policy_threads() == 1
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    assert policy_threads() == 1
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "not a number")
    assert policy_threads() == usable_cpus()
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=usable_cpus() + 3, user_api="blas"):
        assert _blas_threads() == {usable_cpus() + 3}
        with command_threads() as threads:
            assert threads == usable_cpus() and _blas_threads() == {threads}
        assert _blas_threads() == {usable_cpus() + 3}           # restored after


@pytest.fixture
def blas_probe():
    """The "lm" fitting method (and a "probe" copy) wrapped to record the BLAS threads each
    call runs under; the registry restored after."""
    from skcannon.inference.methods import FIT_METHODS, register_fit_method

    original, seen = FIT_METHODS["lm"], []

    def probe(state, flux, ivar, **options):
        seen.append(_blas_threads())
        return original(state, flux, ivar, **options)

    register_fit_method("lm", probe, replace=True)
    register_fit_method("probe", probe)
    try:
        yield seen
    finally:
        register_fit_method("lm", original, replace=True)
        del FIT_METHODS["probe"]


def test_train_fit_and_validate_commands_run_under_the_policy(blas_probe, tmp_path,
                                                              monkeypatch):
    """BLAS raised to usable + 3 threads before each command: inside it (in the label fits
    of training's calibration, of fit, of validate) BLAS has the policy's threads; with the
    user's OMP_NUM_THREADS=1, one."""
    from threadpoolctl import threadpool_limits

    from skcannon.cli import main
    from tests.conftest import shared_file

    for name in BLAS_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    real = str(shared_file("apogee", "real_labelled", "real_giants_100px.npz"))
    model = str(tmp_path / "model.h5")
    commands = (["train", real, "-o", model, "--no-progress", "--calibration-folds", "2"],
                ["fit", real, "--model", model, "--method", "probe", "-o",
                 str(tmp_path / "labels.csv")],
                ["validate", real, "--folds", "0", "-o", str(tmp_path / "validation")])
    for command in commands:
        blas_probe.clear()
        with threadpool_limits(limits=usable_cpus() + 3, user_api="blas"):
            assert main(command) == 0
        assert blas_probe and all(seen == {usable_cpus()} for seen in blas_probe), command
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    blas_probe.clear()
    with threadpool_limits(limits=usable_cpus() + 3, user_api="blas"):
        assert main(commands[1]) == 0
    assert blas_probe == [{1}]


def test_network_training_sets_torch_threads_by_the_policy():
    """A registered architecture records torch's threads in its forward pass: the policy's
    inside fit_nn (1 inside a parallel worker), the caller's setting restored after."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("skorch")
    from skcannon.inference.threads import policy_threads
    from skcannon.nn import fit_nn
    from skcannon.nn.networks import ARCHITECTURES, SpectrumMLP

    seen = set()

    class ThreadProbe(SpectrumMLP):
        def forward(self, x):
            seen.add(torch.get_num_threads())
            return super().forward(x)

    rng = np.random.default_rng(0)
    X = np.stack([1 + 0.01 * rng.normal(size=(40, 50)), np.full((40, 50), 1e4),
                  np.zeros((40, 50))], axis=1)
    y = rng.normal(size=(40, 2))
    ARCHITECTURES["probe"] = ThreadProbe
    before = torch.get_num_threads()
    torch.set_num_threads(usable_cpus() + 3)
    try:
        fit_nn("probe", X[:30], y[:30], X[30:], y[30:], max_epochs=1)
        assert seen == {policy_threads()}
        seen.clear()
        with single_threaded():
            fit_nn("probe", X[:30], y[:30], X[30:], y[30:], max_epochs=1)
        assert seen == {1}
        assert torch.get_num_threads() == usable_cpus() + 3
    finally:
        del ARCHITECTURES["probe"]
        torch.set_num_threads(before)
