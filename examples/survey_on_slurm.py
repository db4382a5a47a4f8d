"""
Label a whole survey on a SLURM cluster (dask-jobqueue)
=======================================================

A recipe, not a gallery script (it needs a SLURM cluster): dask-jobqueue submits Dask workers as
SLURM jobs, ``label_survey`` sends them the model once and one task per chunk of files, and the
run resumes where it stopped if the allocation ends. ``make_slurm_cluster`` is what the test
suite builds (its job script is checked); edit the queue, account and sizes for your site.

From the shell instead (the CLI recipe, docs/survey.rst)::

    dask scheduler --scheduler-file $HOME/scheduler.json &
    srun --ntasks 64 --cpus-per-task 1 \
        dask worker --scheduler-file $HOME/scheduler.json --nthreads 1 &
    skcannon survey model.h5 allStar-dr17-synspec_rev1.fits --cuts \
        --data-dir $SCRATCH/apogee --scheduler-file $HOME/scheduler.json -o dr17-labels
"""

from __future__ import annotations


def make_slurm_cluster(*, queue: str = "normal", account: str | None = None,
                       cores: int = 64, memory: str = "256GB", walltime: str = "04:00:00",
                       scheduler_host: str | None = None):
    """A dask-jobqueue SLURMCluster: one job per node, ``cores`` single-threaded worker
    processes per job (the survey's tasks are single-threaded NumPy; ~0.6 GB each).

    ``scheduler_host`` is the address the workers reach the scheduler at (default: this
    machine's; use e.g. the InfiniBand interface's with ``interface="ib0"`` at your site)."""
    from dask_jobqueue import SLURMCluster

    return SLURMCluster(
        queue=queue, account=account, cores=cores, processes=cores, memory=memory,
        walltime=walltime, job_extra_directives=["--exclusive"],
        scheduler_options={"dashboard_address": ":8787"} if scheduler_host is None
        else {"host": scheduler_host, "dashboard_address": None},
        local_directory="$TMPDIR")


def main() -> None:
    import skcannon
    from skcannon.pipeline.model import model_pipeline
    from skcannon.survey import label_survey, survey_inputs

    cluster = make_slurm_cluster(account="my-allocation")
    cluster.scale(jobs=4)                        # 4 nodes x 64 workers
    inputs = survey_inputs(["allStar-dr17-synspec_rev1.fits"], directory="/scratch/apogee")
    model = model_pipeline(skcannon.load("model.h5"))[0]   # the fitted Pipeline it holds
    result = label_survey(model, inputs, "dr17-labels",
                          scheduler=cluster.scheduler_address)
    print(result.summary)
    cluster.close()


if __name__ == "__main__":
    main()
