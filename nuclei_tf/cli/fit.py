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


def fine_tune_base(start_from, data_mpp):
    """The recipe of the model folder ``start_from`` (its ``trained_with``: arch, model options,
    preprocessing, data and training settings) as config overrides, with ``start_from`` itself;
    refused when the folder's resolution is not that of the data (within 5%)."""
    from nuclei_tf.data.errors import DataError
    from nuclei_tf.inference.shipped import resolve_model
    from nuclei_tf.inference.folder_config import read_folder_config

    folder = resolve_model(start_from)
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise DataError(folder, "is not a model folder (no config.json): --from takes a folder written by calibrate")
    settings = read_folder_config(config_file)
    trained = settings.get("trained_with") or {}
    if "arch" not in trained:
        raise DataError(config_file, "records no trained_with recipe (arch, model, preprocess), so it cannot be fine-tuned")
    if settings["mpp"] is not None:
        if data_mpp is None:
            raise click.UsageError(f"{folder} works at {settings['mpp']} um/px: state the resolution of --data's images "
                                   "(--mpp, or \"mpp\" in ROOT/dataset.json) so that they are checked against it")
        if abs(data_mpp / settings["mpp"] - 1) > 0.05:
            raise click.UsageError(f"--data's images are at {data_mpp} um/px and {folder} at {settings['mpp']} um/px: "
                                   f"export them at the model's resolution (nuclei-tf import-annotations --mpp {settings['mpp']})")
    base = {k: trained[k] for k in ("arch", "model", "preprocess", "data", "train", "precision") if k in trained}
    base["data"] = {k: v for k, v in base.get("data", {}).items() if k not in ("classes", "seed")}
    base["train"] = {k: v for k, v in base.get("train", {}).items() if k != "seed"}
    return {**base, "start_from": str(folder)}


def own_data(data_root, protocol, labels, val_fraction, mpp):
    """The description of ``--data`` (protocol folder), or None; its options without it are refused."""
    from nuclei_tf.data.folder import describe_folder

    if data_root is None:
        if any(v is not None for v in (labels, val_fraction, mpp)):
            raise click.UsageError("--labels, --val-fraction and --mpp describe --data ROOT (your own folder)")
        return None
    if protocol not in (None, "folder"):
        raise click.UsageError(f"--data trains on your own folder (protocol folder), not --protocol {protocol}")
    return describe_folder(data_root, labels=labels, val_fraction=val_fraction, mpp=mpp)


@click.command()
@click.option("--arch", help="Architecture (see `nuclei-tf models`); overrides the config's.")
@dataset_options
@click.option("--labels", type=click.Choice(["instances", "binary"]),
              help="--data's labels: instance maps (default) or binary masks (4-connected components become nuclei).")
@click.option("--val-fraction", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="--data without ROOT/val/: the fraction of images held out for validation (default 0.2).")
@click.option("--mpp", type=click.FloatRange(0.05, 20), help="Microns per pixel of --data's images (else ROOT/dataset.json's).")
@click.option("--from", "start_from", is_flag=False, flag_value="unet_plus_b16", metavar="MODEL",
              help="Fine-tune a model folder (or shipped model name; --from alone: the shipped unet_plus_b16) with its "
                   "architecture, stain normalisation and head.")
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True), help="Adam learning rate (overrides the recipe's).")
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
def fit(arch, monuseg, tnbc, dsb, data, labels, val_fraction, mpp, start_from, learning_rate, protocol, seed, config_path,
        epochs, steps_per_epoch, batch_size, precision, run_dir, resume, overwrite):
    """Train a model, on a paper's protocol or on your own annotations (--data), from scratch or from a
    model folder (--from); the run folder gets config, checksums, history, TensorBoard logs,
    best.keras, summary. `nuclei-tf calibrate RUN/best.keras --out FOLDER` makes it a model folder."""
    from nuclei_tf.models.pretrained import EncoderWeightsError
    from nuclei_tf.train.config import load_config, merge
    from nuclei_tf.train.run import fit_run
    from nuclei_tf.train.trainer import NonFiniteLossError, TrainingInterrupted

    if resume and (run_dir / "config.yaml").is_file() and config_path is None:
        config_path = run_dir / "config.yaml"
    dataset = own_data(data, protocol, labels, val_fraction, mpp)
    base = {}
    if start_from is not None:
        if arch is not None or (config_path is not None and not resume):
            raise click.UsageError("--from takes the architecture and recipe of the model folder; drop --arch / --config")
        base = fine_tune_base(start_from, dataset and dataset["mpp"])
    overrides = merge(base, {
        "arch": arch,
        "protocol": "folder" if dataset else protocol,
        "dataset": dataset,
        "seed": seed,
        "precision": precision,
        "data": {"batch_size": batch_size},
        "train": {"epochs": epochs, "steps_per_epoch": steps_per_epoch, "learning_rate": learning_rate},
    })
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
