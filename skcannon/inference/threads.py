"""One thread policy for training, inference, validation and the survey.

Every parallel layer is sized from the CPUs this process may use (:func:`usable_cpus`, from
``os.sched_getaffinity``: a batch job's or container's share, not the machine's count), and
the layers are never nested: a layer that runs work in parallel (a thread pool, Dask workers)
gives each of its workers ``usable // workers`` BLAS threads (at least one), and code running
inside such a worker (:func:`single_threaded`) asks for one thread everywhere. So threads x
BLAS threads x workers never exceeds the usable CPUs, and a shared machine (a survey node, a
laptop) is not oversubscribed by skcannon itself.

Every command of the ``skcannon`` CLI and every job (:func:`skcannon.pipeline.job.run_main_job`)
runs inside :func:`command_threads`: the BLAS and OpenMP pools of the process are set to
:func:`policy_threads` (the usable CPUs, or fewer where the user's ``OMP_NUM_THREADS`` /
``OPENBLAS_NUM_THREADS`` / ``MKL_NUM_THREADS`` ask for fewer), and the neural network's
training sets torch's threads the same way (:func:`torch_threads`).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator

#: Environment variables that size the BLAS/OpenMP pools of a new process (a Dask worker).
BLAS_ENVIRONMENT = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

_NESTED: contextvars.ContextVar[bool] = contextvars.ContextVar("skcannon_nested",
                                                               default=False)


def usable_cpus() -> int:
    """The CPUs this process may run on (``os.sched_getaffinity``; ``os.cpu_count`` where the
    platform has no affinity), at least 1."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except (AttributeError, OSError):
        return max(os.cpu_count() or 1, 1)


def resolve_n_jobs(n_jobs: int | None, cap: int | None = None) -> int:
    """The threads an ``n_jobs`` option asks for, under the policy.

    Parameters
    ----------
    n_jobs : int or None
        None: the usable CPUs (at most ``cap``); a positive int: that many; a negative int:
        the usable CPUs plus one plus ``n_jobs`` (-1: all of them), at least 1.
    cap : int, optional
        The most threads None may give (where more do not help).

    Returns
    -------
    int
        At least 1; always 1 inside :func:`single_threaded` (never nested).
    """
    if _NESTED.get():
        return 1
    usable = usable_cpus()
    if n_jobs is None:
        return max(min(usable, cap or usable), 1)
    n_jobs = int(n_jobs)
    return max(n_jobs if n_jobs > 0 else usable + 1 + n_jobs, 1)


def worker_layout(n_workers: int | None = None) -> tuple[int, int]:
    """Workers of an embedded cluster and the BLAS threads of each.

    Parameters
    ----------
    n_workers : int, optional
        Default: one per usable CPU.

    Returns
    -------
    workers : int
    blas_threads : int
        ``usable_cpus() // workers``, at least 1 (one worker on 2 CPUs gets both).
    """
    usable = usable_cpus()
    workers = usable if n_workers is None else max(int(n_workers), 1)
    return workers, max(usable // workers, 1)


def worker_environment(blas_threads: int) -> dict[str, str]:
    """Environment variables giving a new process ``blas_threads`` BLAS/OpenMP threads."""
    return {name: str(max(int(blas_threads), 1)) for name in BLAS_ENVIRONMENT}


@contextlib.contextmanager
def environment_kept() -> Iterator[None]:
    """Restore the :data:`BLAS_ENVIRONMENT` variables of this process after the block, as they
    were before it (Dask's nanny sets them to 1 in the parent process when it starts worker
    processes; the policy reads them as the user's choice, :func:`policy_threads`)."""
    before = {name: os.environ.get(name) for name in BLAS_ENVIRONMENT}
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Run the block as one worker of a parallel layer: BLAS limited to one thread (via
    threadpoolctl) and every ``n_jobs`` resolved to 1, so nothing nests."""
    from threadpoolctl import threadpool_limits

    token = _NESTED.set(True)
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    finally:
        _NESTED.reset(token)


@contextlib.contextmanager
def blas_threads(n_threads: int | None) -> Iterator[None]:
    """Limit BLAS to ``n_threads`` threads in the block (None: leave it as it is)."""
    if n_threads is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=max(int(n_threads), 1), user_api="blas"):
        yield


def policy_threads() -> int:
    """The BLAS/OpenMP threads of one command or job under the policy.

    Returns
    -------
    int
        The usable CPUs (:func:`resolve_n_jobs` of None: 1 inside :func:`single_threaded`),
        fewer where a variable of :data:`BLAS_ENVIRONMENT` set by the user asks for fewer
        (``OMP_NUM_THREADS=1`` for many processes side by side is kept); at least 1.
    """
    threads = resolve_n_jobs(None)
    for name in BLAS_ENVIRONMENT:
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            threads = min(threads, int(value))
    return threads


@contextlib.contextmanager
def command_threads() -> Iterator[int]:
    """Run the block (a command, a job) under the policy: every BLAS and OpenMP pool loaded
    (numpy's, scipy's, scikit-learn's) limited to :func:`policy_threads` threads, restored
    after. Pools inside it (training's threads, Dask workers) size themselves as the module
    says, never on top of these threads.

    Yields
    ------
    int
        The threads allowed.
    """
    import scipy.linalg  # noqa: F401  (loads scipy's BLAS, so that the limit reaches it)
    from threadpoolctl import threadpool_limits

    threads = policy_threads()
    with threadpool_limits(limits=threads):
        yield threads


@contextlib.contextmanager
def torch_threads() -> Iterator[int]:
    """torch's intra-op threads set to :func:`policy_threads` in the block (1 inside
    :func:`single_threaded`), restored after; torch must be importable.

    Yields
    ------
    int
        The threads torch uses in the block.
    """
    import torch

    threads, previous = policy_threads(), torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield threads
    finally:
        torch.set_num_threads(previous)
