"""What the survey asks of the workers of its embedded Dask cluster (imports ``distributed``,
so it is imported only where a cluster is started)."""

from __future__ import annotations

import signal
import threading

from distributed import WorkerPlugin


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
