"""Where a cohort's tasks run (dask's own pattern: one client, any cluster): by default a
``LocalCluster`` sized to this machine, else an existing scheduler, else a Slurm allocation
started by ``dask_jobqueue``. Each worker runs one slide at a time (one Dask thread), its
TensorFlow limited to its share of the cores, so nothing is oversubscribed."""
import ctypes
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Optional

#: TensorFlow's GPU count, asked in a child process (the client never starts TensorFlow nor holds a GPU)
_TENSORFLOW_GPUS = ("import sys; sys.modules['jax'] = None; import tensorflow as tf; "
                    "print(len(tf.config.list_physical_devices('GPU')))")


def visible_gpus():
    """How many GPUs TensorFlow sees here: none without an NVIDIA driver (``libcuda``, asked
    through ctypes in milliseconds), else TensorFlow's own count in a short child process (a
    driver without TensorFlow's CUDA libraries gives none)."""
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return 0
    count = ctypes.c_int(0)
    if cuda.cuInit(0) != 0 or cuda.cuDeviceGetCount(ctypes.byref(count)) != 0 or not count.value:
        return 0
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", _TENSORFLOW_GPUS], capture_output=True, text=True, env=env, timeout=300)
    lines = done.stdout.split()
    return int(lines[-1]) if done.returncode == 0 and lines and lines[-1].isdigit() else 0


def gpu_worker_specs(gpus):
    """``SpecCluster`` worker specs: one single-threaded worker per GPU, pinned to it
    (``CUDA_VISIBLE_DEVICES``) and declaring the resource ``GPU: 1`` its tasks ask for."""
    from distributed import Nanny

    return {f"gpu-{i}": {"cls": Nanny, "options": {"nthreads": 1, "resources": {"GPU": 1},
                                                    "env": {"CUDA_VISIBLE_DEVICES": str(i)}}} for i in range(gpus)}


#: resident memory one CPU worker is given room for (shipped model, 4,000 px slides: 1.5 GiB peak)
WORKER_MEMORY = 2.5 * 2**30
#: the environment variable that sets a worker's TensorFlow threads (read by its first task)
THREADS_VARIABLE = "NUCLEI_TF_THREADS"


def cpu_workers(cores=None, memory=None, workers=None):
    """``(workers, TensorFlow threads each)`` for a CPU machine: ``workers`` if given (the cores
    shared among them), else one single-threaded worker per core while memory allows
    :data:`WORKER_MEMORY` each (on 2 cores, two 1-thread workers segment a cohort faster than one
    2-thread worker: ``benchmarks/bench_cohort.py``)."""
    import psutil

    cores = cores or len(os.sched_getaffinity(0))
    memory = memory or psutil.virtual_memory().total
    workers = workers or max(1, min(cores, int(memory // WORKER_MEMORY)))
    return workers, max(1, cores // workers)


def local_cluster(gpus, workers=None, dashboard_address=":8787"):
    """This machine's cluster on 127.0.0.1: one worker per GPU (:func:`visible_gpus`), else
    :func:`cpu_workers` (``workers`` of them if given); every worker runs one slide at a time."""
    from distributed import LocalCluster, Scheduler, SpecCluster

    if gpus:
        scheduler = {"cls": Scheduler, "options": {"host": "127.0.0.1", "dashboard_address": dashboard_address}}
        return SpecCluster(workers=gpu_worker_specs(gpus), scheduler=scheduler, silence_logs=40)
    workers, threads = cpu_workers(workers=workers)
    return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                        dashboard_address=dashboard_address, silence_logs=40, env={THREADS_VARIABLE: str(threads)})


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
