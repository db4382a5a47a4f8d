"""What the survey asks of the workers of its embedded Dask cluster (imports ``distributed``,
so it is imported only where a cluster is started)."""

from __future__ import annotations

import logging
import signal
import threading

import dask
from distributed import LocalCluster, WorkerPlugin

#: The variable Dask's nanny sets to 65536 in every worker it spawns (its default
#: ``distributed.nanny.pre-spawn-environ``, to return freed memory to the OS at once). Setting it
#: turns off glibc's adaptive mmap threshold, so every array above 128 kB is a fresh mapping,
#: page-faulted again at each step: measured on one 256-file chunk, 0.76-0.84 s in such a
#: worker against 0.50-0.54 s without it (0.45 s in a plain process). The embedded cluster's
#: workers keep glibc's defaults (or the value this process's environment gives).
MALLOC_TRIM_VARIABLE = "MALLOC_TRIM_THRESHOLD_"
#: Module every embedded worker imports as it starts (Dask's ``preload``), while the driver
#: plans the run: the chunk code and what it needs (scikit-learn, astropy ...; ~1.5 s), not paid
#: by the first chunk.
WORKER_PRELOAD = "skcannon.survey.chunk"


def embedded_cluster(n_workers: int | None = None, *, dashboard_address: str | None = ":0"
                     ) -> LocalCluster:
    """The survey's embedded LocalCluster: single-threaded worker processes (``n_workers``,
    default one per usable CPU), each with ``usable // n_workers`` BLAS threads (the policy of
    :mod:`skcannon.inference.threads`), without Dask's malloc trim setting
    (:data:`MALLOC_TRIM_VARIABLE`), importing the chunk code as they start
    (:data:`WORKER_PRELOAD`), logging only critical errors.

    Parameters
    ----------
    n_workers : int, optional
    dashboard_address : str or None, default=":0"
        Where the dashboard is served (None: not served).

    Returns
    -------
    distributed.LocalCluster
    """
    from skcannon.inference.threads import environment_kept, worker_environment, worker_layout

    workers, blas = worker_layout(n_workers)      # workers x BLAS threads <= usable CPUs
    spawn = {name: value for name, value
             in dask.config.get("distributed.nanny.pre-spawn-environ", {}).items()
             if name != MALLOC_TRIM_VARIABLE}
    with environment_kept(), dask.config.set({"distributed.nanny.pre-spawn-environ": spawn}):
        # (environment_kept: Dask's nanny sets OMP_NUM_THREADS=1 ... in this process)
        return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                            dashboard_address=dashboard_address, preload=[WORKER_PRELOAD],
                            silence_logs=logging.CRITICAL, env=worker_environment(blas))


class IgnoreInterrupts(WorkerPlugin):
    """Worker plugin of the embedded cluster: its worker processes (restarted ones too) ignore
    SIGINT, so Ctrl-C in a terminal (which signals the whole process group) stops the driver
    alone, which then closes the cluster - one message, no worker tracebacks."""

    name = "skcannon-ignore-sigint"

    def setup(self, worker) -> None:
        """Ignore SIGINT in this worker process (where the worker runs in the main thread).

        Parameters
        ----------
        worker : distributed.Worker
        """
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)
