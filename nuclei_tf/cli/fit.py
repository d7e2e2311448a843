"""`nuclei-tf fit`: train an architecture under a paper's protocol into a run folder."""
import sys
from pathlib import Path

import click

from nuclei_tf.cli.options import data_errors_as_usage, dataset_options, protocol_option

#: the GB U-Net that trains without ImageNet weights (from-scratch members, 2 CPU cores)
CPU_RECIPE = "experiments/lagree2021-gbunet-cpu.yaml"


def check_run_folder(run_dir, config, resume, overwrite):
    """Refuse to mix two runs in one folder: a folder holding a run needs --resume (same
    settings; more epochs allowed) or --overwrite (the old run is deleted). The recorded config is
    resolved again, so settings added since it was written compare at their defaults."""
    import shutil

    from nuclei_tf.train.config import load_config

    recorded = run_dir / "config.yaml"
    if not recorded.is_file():
        if resume:
            raise click.UsageError(f"--resume: {run_dir} holds no run (no config.yaml)")
        return
    if overwrite:
        shutil.rmtree(run_dir)
        return
    state = "a finished run" if (run_dir / "summary.json").is_file() else "an unfinished run"
    if not resume:
        raise click.UsageError(f"{run_dir} holds {state}; pass --resume to continue it, --overwrite to replace it, "
                               "or choose another --out")
    previous = load_config(recorded)
    changed = sorted(k for k in config if k != "train" and config[k] != previous.get(k))
    changed += [f"train.{k}" for k in config["train"] if k != "epochs" and config["train"][k] != previous["train"].get(k)]
    if changed:
        raise click.UsageError(f"--resume: {run_dir} was started with other settings ({', '.join(changed)}); "
                               "only --epochs may change when resuming")


@click.command()
@click.option("--arch", help="Architecture (see `nuclei-tf models`); overrides the config's.")
@dataset_options
@protocol_option(default=None)
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False), help="Experiment YAML (see experiments/).")
@click.option("--epochs", type=click.IntRange(min=1), help="Number of epochs.")
@click.option("--steps-per-epoch", type=click.IntRange(min=1), help="Cap on training batches per epoch.")
@click.option("--batch-size", type=click.IntRange(min=1), help="Global batch size.")
@click.option("--precision", type=click.Choice(["auto", "float32", "mixed_float16", "mixed_bfloat16"]), help="auto: mixed_float16 on GPU, float32 on CPU.")
@click.option("--out", "run_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("runs/latest"), show_default=True, help="Run folder.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option("--overwrite", is_flag=True, help="Replace the run already in --out.")
@data_errors_as_usage
def fit(arch, monuseg, tnbc, dsb, protocol, seed, config_path, epochs, steps_per_epoch, batch_size, precision, run_dir, resume,
        overwrite):
    """Train a model; the run folder gets config, checksums, history, TensorBoard logs, best.keras, summary."""
    from nuclei_tf.models.pretrained import EncoderWeightsError
    from nuclei_tf.train.config import load_config
    from nuclei_tf.train.run import fit_run
    from nuclei_tf.train.trainer import NonFiniteLossError, TrainingInterrupted

    if resume and (run_dir / "config.yaml").is_file() and config_path is None:
        config_path = run_dir / "config.yaml"
    overrides = {
        "arch": arch,
        "protocol": protocol,
        "seed": seed,
        "precision": precision,
        "data": {"batch_size": batch_size},
        "train": {"epochs": epochs, "steps_per_epoch": steps_per_epoch},
    }
    config = load_config(config_path, overrides)
    check_run_folder(run_dir, config, resume, overwrite)
    try:
        summary = fit_run(config, run_dir, monuseg=monuseg, tnbc=tnbc, dsb=dsb, resume=resume)
    except TrainingInterrupted as exc:
        click.echo(f"\n{exc}", err=True)
        sys.exit(130)
    except NonFiniteLossError as exc:
        raise click.ClickException(str(exc)) from None
    except EncoderWeightsError as exc:
        raise click.ClickException(f"{exc}\nNothing was trained. Without ImageNet weights, train the from-scratch CPU "
                                   f"recipe instead: nuclei-tf fit --config {CPU_RECIPE} (see README)") from None
    if summary["best_val_loss"] is None:  # the U-Net ensemble: nothing to train beyond its members
        click.echo(f"model: {summary['best_model']} (no trainable weights; {summary['seconds']} s)")
    else:
        click.echo(f"best model: {summary['best_model']} (val loss {summary['best_val_loss']:.4f}, "
                   f"{summary['epochs']} epochs, {summary['seconds']} s)")
