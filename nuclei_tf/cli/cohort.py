"""`nuclei-tf cohort`: hundreds of slides on Dask, on this machine by default and on an existing
cluster or a Slurm allocation unchanged. The client never starts TensorFlow: the workers load
the model."""
import sys
from pathlib import Path

import click

from nuclei_tf.cli.options import data_errors_as_usage, prediction_options, writable_folder


def _slurm_options(func):
    """--slurm and the Slurm job's options (one job per worker)."""
    for option in reversed([
        click.option("--slurm", is_flag=True, help="Start the workers as Slurm jobs (dask-jobqueue; pip install -e \".[slurm]\")."),
        click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True, help="Slurm jobs (= workers) to request."),
        click.option("--partition", help="Slurm partition (-p)."),
        click.option("--account", help="Slurm account (-A)."),
        click.option("--cores", type=click.IntRange(min=1), default=8, show_default=True, help="CPUs per Slurm job."),
        click.option("--gpus-per-job", type=click.IntRange(0, 1), default=0, show_default=True,
                     help="GPUs per Slurm job (0 or 1: one worker per GPU, so more GPUs means more jobs)."),
        click.option("--memory", default="32GB", show_default=True, help="Memory per Slurm job."),
        click.option("--walltime", default="04:00:00", show_default=True, help="Walltime per Slurm job."),
        click.option("--interface", help="Network interface the scheduler and workers talk over (e.g. ib0)."),
        click.option("--dry-run", is_flag=True, help="With --slurm: print the job script and exit."),
    ]):
        func = option(func)
    return func


@click.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Cohort folder: slides/<id>.*, cohort.csv, failures.csv, cohort.png.")
@click.option("--scheduler", help="Address of a running Dask scheduler (tcp://HOST:PORT) to use instead of a local cluster.")
@click.option("--workers", type=click.IntRange(min=1), help="Local cluster on CPU: this many workers, sharing the cores "
              "(default: one 1-thread worker per core while memory allows 2.5 GiB each).")
@_slurm_options
@prediction_options
@data_errors_as_usage
def cohort(inputs, out_dir, scheduler, workers, slurm, jobs, partition, account, cores, gpus_per_job, memory, walltime, interface,
           dry_run, model_path, batch_size, mpp, tissue, overlay, min_area, tta, precision):
    """Segment a cohort: INPUTS are slides, folders (searched recursively) or CSV manifests (path,
    optional id, mpp, roi). One Dask task per slide; a failed slide goes to failures.csv and the
    others go on; the same command again skips the finished slides and resumes the others."""
    from nuclei_tf.cohort.engine import SlurmOptions, slurm_job_script
    from nuclei_tf.cohort.run import check_settings
    from nuclei_tf.cohort.slides import cohort_slides
    from nuclei_tf.cohort.task import CohortSettings
    from nuclei_tf.inference.shipped import resolve_model

    if scheduler and slurm:
        raise click.UsageError("--scheduler and --slurm exclude each other: use a running cluster or start one")
    if workers and (scheduler or slurm):
        raise click.UsageError("--workers sizes the local cluster: with --scheduler or --slurm the cluster is sized there")
    slurm_options = SlurmOptions(jobs, partition, account, cores, gpus_per_job, memory, walltime, interface)
    if dry_run:
        if not slurm:
            raise click.UsageError("--dry-run prints the Slurm job script: add --slurm")
        click.echo(slurm_job_script(slurm_options))
        return
    slides = cohort_slides(inputs)
    writable_folder(out_dir)
    model = None
    if model_path is not None:  # workers may start elsewhere: a path is made absolute, a shipped name kept
        try:
            resolve_model(model_path)
        except FileNotFoundError as exc:
            raise click.BadParameter(str(exc), param_hint="--model") from None
        model = str(model_path.resolve()) if model_path.exists() else str(model_path)
    settings = CohortSettings(model, precision, tta, min_area, batch_size, tissue, overlay, mpp)
    check_settings(out_dir, settings)  # before any cluster starts
    run_on_cluster(slides, out_dir.resolve(), settings, scheduler, slurm_options if slurm else None, workers)


def run_on_cluster(slides, out_dir, settings, scheduler, slurm, workers=None):
    """Open the client (an existing scheduler, a Slurm cluster or the local one), run, close."""
    from distributed import Client

    from nuclei_tf.cohort.engine import local_cluster, slurm_cluster, visible_gpus
    from nuclei_tf.cohort.run import CohortStopped, run_cohort

    cluster = None
    if scheduler:
        client = Client(scheduler, timeout="30s")
    elif slurm:
        cluster = slurm_cluster(slurm)
        client = Client(cluster)
    else:  # the workers are sized to the GPUs TensorFlow sees here
        cluster = local_cluster(visible_gpus(), workers)
        client = Client(cluster)
    try:
        workers = len(client.scheduler_info(n_workers=-1)["workers"])
        click.echo(f"Dask: {workers} worker(s) at {client.scheduler.address}; dashboard {client.dashboard_link}", err=True)
        tables = run_cohort(slides, out_dir, settings, client)
    except CohortStopped as stop:
        click.echo(f"\ninterrupted: {stop}", err=True)
        sys.exit(130)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    failed = tables.failed
    click.echo(f"{len(tables.rows) - len(failed)} of {len(slides)} slides segmented -> {out_dir / 'cohort.csv'}"
               + (f"; {len(failed)} failed: see {out_dir / 'failures.csv'}" if failed else ""))
