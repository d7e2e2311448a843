"""One training run in a run folder: resolved config, dataset checksums, history CSV,
TensorBoard logs, best model and summary; GB U-Net's two stages (Lagree et al. 2021)."""
import hashlib
import json
import time
from pathlib import Path

import keras
import yaml

from nuclei_tf.data.pipeline import PipelineConfig, TrainingPipeline, prepare
from nuclei_tf.data.protocols import split_protocol
from nuclei_tf.models import build_model
from nuclei_tf.preprocess.configured import make_preprocess
from nuclei_tf.train.precision import set_precision
from nuclei_tf.train.trainer import TrainConfig, Trainer


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def environment(policy):
    """Versions, devices and the resolved precision policy of this run."""
    import tensorflow as tf

    from nuclei_tf import __version__

    return {
        "nuclei_tf": __version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "precision": policy,
        "devices": [d.name for d in tf.config.list_physical_devices()],
    }


def dataset_checksums(splits):
    """{split: {id: {image: sha256, label: sha256}}} of every file a run reads (a label file
    shared by many images, such as a DSB-2018 run-length CSV, is hashed once)."""
    digests = {}

    def digest(path):
        if path not in digests:
            digests[path] = sha256(path)
        return digests[path]

    return {
        name: {
            r.id: {"image": digest(r.image_path), "label": digest(r.label_path) if r.label_path and Path(r.label_path).is_file() else None}
            for r in records
        }
        for name, records in splits.items()
    }


def standard_callbacks(run_dir, user_callbacks=()):
    """History CSV and TensorBoard logs in the run folder, then the user's callbacks."""
    return [
        keras.callbacks.CSVLogger(str(Path(run_dir) / "history.csv"), append=True),
        keras.callbacks.TensorBoard(log_dir=str(Path(run_dir) / "tensorboard"), write_graph=False),
        *user_callbacks,
    ]


def train_stage(build, splits, config, run_dir, resume=False, callbacks=(), cache_dir=None):
    """Train one model in ``run_dir``; returns (trainer, history)."""
    data_config = PipelineConfig.from_dict(config["data"])
    preprocess = make_preprocess(config["preprocess"])
    train = TrainingPipeline(prepare(splits["train"], data_config, preprocess, cache_dir), data_config)
    val = TrainingPipeline(prepare(splits["val"], data_config, preprocess, cache_dir), data_config, training=False) if splits.get("val") else None
    trainer = Trainer(build, train, val, TrainConfig(**config["train"]), run_dir, standard_callbacks(run_dir, callbacks))
    return trainer, trainer.fit(resume=resume)


def train_members(specs, splits, config, run_dir, resume=False):
    """GB U-Net stage 1: train each member given as a spec dict (skipping members a previous
    run finished); ``.keras`` paths are used as they are. Returns the members' model paths."""
    paths = []
    for index, spec in enumerate(specs):
        if isinstance(spec, (str, Path)):
            paths.append(str(spec))
            continue
        member_dir = Path(run_dir) / "members" / str(index)
        if not (member_dir / "done").is_file():
            options = {k: v for k, v in spec.items() if k != "arch"}
            train_stage(lambda: build_model(spec["arch"], **options), splits, config, member_dir,
                        resume=resume and (member_dir / "checkpoints" / "last").exists())
            (member_dir / "done").write_text("stage 1 finished\n")
        paths.append(str(member_dir / "best.keras"))
    return paths


def plot_history(history, path):
    """Training and validation loss (and Dice) per epoch as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    figure, (loss_axis, dice_axis) = plt.subplots(1, 2, figsize=(9, 3.5), dpi=110)
    for key, axis in (("loss", loss_axis), ("dice", dice_axis)):
        axis.plot(epochs, [h[key] for h in history], marker="o", label=f"train {key}")
        if all(f"val_{key}" in h for h in history):
            axis.plot(epochs, [h[f"val_{key}"] for h in history], marker="s", label=f"validation {key}")
        axis.set(xlabel="epoch", ylabel=key)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def fit_run(config, run_dir, monuseg=None, tnbc=None, dsb=None, resume=False, callbacks=()):
    """Train ``config`` under its protocol into ``run_dir``; returns the summary dict."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    policy = set_precision(config["precision"])
    splits = split_protocol(config["protocol"], monuseg=monuseg, tnbc=tnbc, dsb=dsb, seed=config["seed"])
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (run_dir / "environment.json").write_text(json.dumps(environment(policy), indent=2))
    (run_dir / "datasets.json").write_text(json.dumps(dataset_checksums({k: splits[k] for k in ("train", "val") if k in splits}), indent=1))
    started = time.time()
    model_options = dict(config["model"])
    if config["arch"] == "gbunet":
        model_options["members"] = train_members(config["members"] or [], splits, config, run_dir, resume)
    trainer, history = train_stage(lambda: build_model(config["arch"], **model_options), splits, config, run_dir,
                                   resume=resume, callbacks=callbacks, cache_dir=run_dir / "cache")
    summary = {
        "arch": config["arch"],
        "protocol": config["protocol"],
        "seed": config["seed"],
        "precision": policy,
        "parameters": int(trainer.model.count_params()),
        "epochs": len(history),
        "best_val_loss": min((h.get("val_loss", h["loss"]) for h in history), default=None),
        "history": history,
        "best_model": str(trainer.best_path),
        "seconds": round(time.time() - started, 1),
        "images": {k: len(v) for k, v in splits.items()},
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    if history:
        plot_history(history, run_dir / "loss_curve.png")
    return summary
