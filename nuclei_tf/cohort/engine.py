"""Where a cohort's tasks run (dask's own pattern: one client, any cluster): by default a
``LocalCluster`` sized to this machine, else an existing scheduler, else a Slurm allocation
started by ``dask_jobqueue``. Each worker runs one slide at a time (one thread; TensorFlow uses
the worker's cores), so nothing is oversubscribed."""
import sys
from dataclasses import dataclass
from typing import Optional

def visible_gpus():
    """How many GPUs TensorFlow sees here (listing them allocates nothing on them; workers are
    spawned, not forked, so they start CUDA afresh)."""
    import tensorflow as tf

    return len(tf.config.list_physical_devices("GPU"))


def gpu_worker_specs(gpus):
    """``SpecCluster`` worker specs: one single-threaded worker per GPU, pinned to it
    (``CUDA_VISIBLE_DEVICES``) and declaring the resource ``GPU: 1`` its tasks ask for."""
    from distributed import Nanny

    return {f"gpu-{i}": {"cls": Nanny, "options": {"nthreads": 1, "resources": {"GPU": 1},
                                                    "env": {"CUDA_VISIBLE_DEVICES": str(i)}}} for i in range(gpus)}


def local_cluster(gpus, dashboard_address=":8787"):
    """This machine's cluster on 127.0.0.1: one worker per GPU (:func:`visible_gpus`), else one
    worker with one thread (the model uses every core)."""
    from distributed import LocalCluster, Scheduler, SpecCluster

    if gpus:
        scheduler = {"cls": Scheduler, "options": {"host": "127.0.0.1", "dashboard_address": dashboard_address}}
        return SpecCluster(workers=gpu_worker_specs(gpus), scheduler=scheduler, silence_logs=40)
    return LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                        dashboard_address=dashboard_address, silence_logs=40)


@dataclass(frozen=True)
class SlurmOptions:
    """One Slurm job per worker (``cores`` CPUs, ``gpus`` 0 or 1: more GPUs means more jobs, each
    worker pinned to its own by Slurm)."""

    jobs: int = 1
    partition: Optional[str] = None
    account: Optional[str] = None
    cores: int = 8
    gpus: int = 0
    memory: str = "32GB"
    walltime: str = "04:00:00"
    interface: Optional[str] = None

    def job_options(self):
        """``dask_jobqueue`` keyword arguments for these options."""
        options = {"queue": self.partition, "account": self.account, "cores": 1, "job_cpu": self.cores, "processes": 1,
                   "memory": self.memory, "walltime": self.walltime, "interface": self.interface,
                   "name": "nuclei-tf", "python": sys.executable}
        if self.gpus:
            options.update(job_extra_directives=[f"--gres=gpu:{self.gpus}"], worker_extra_args=["--resources", "GPU=1"])
        return options


def slurm_job_script(options, scheduler="tcp://SCHEDULER:8786"):
    """The batch script each Slurm job of the cohort runs (``cohort --slurm --dry-run``)."""
    from dask_jobqueue.slurm import SLURMJob

    return SLURMJob(scheduler=scheduler, **options.job_options()).job_script()


def slurm_cluster(options):
    """A ``dask_jobqueue.SLURMCluster`` with ``options.jobs`` jobs requested."""
    from dask_jobqueue import SLURMCluster

    cluster = SLURMCluster(**options.job_options())
    cluster.scale(jobs=options.jobs)
    return cluster
