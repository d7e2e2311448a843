"""One training run in a run folder: resolved config, dataset checksums, history CSV,
TensorBoard logs, best model and summary; GB U-Net's two stages and the U-Net ensemble
(Lagree et al. 2021)."""
import hashlib
import json
import time
from pathlib import Path

import keras
import yaml

from nuclei_tf.data.pipeline import PipelineConfig, TrainingPipeline, prepare
from nuclei_tf.data.protocols import split_protocol
from nuclei_tf.models import build_model, load_model
from nuclei_tf.models.members import load_member
from nuclei_tf.preprocess.configured import make_preprocess
from nuclei_tf.train.members import resolve_members
from nuclei_tf.train.plan import plan_row
from nuclei_tf.train.precision import set_precision
from nuclei_tf.train.trainer import TrainConfig, Trainer

#: archs built on frozen members (stage 1 then a second stage)
STACKED = ("gbunet", "ensemble")


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


class Pipelines:
    """Training and validation pipelines of a protocol's splits, built once per (data,
    preprocess) section and shared by every stage of a run that uses the same ones."""

    def __init__(self, splits, cache_dir=None):
        self.splits, self.cache_dir, self._built = splits, cache_dir, {}

    def __call__(self, config):
        key = json.dumps([config["data"], config["preprocess"]], sort_keys=True)
        if key not in self._built:
            data_config = PipelineConfig.from_dict(config["data"])
            preprocess = make_preprocess(config["preprocess"])
            train = TrainingPipeline(prepare(self.splits["train"], data_config, preprocess, self.cache_dir), data_config)
            val = (TrainingPipeline(prepare(self.splits["val"], data_config, preprocess, self.cache_dir), data_config, training=False)
                   if self.splits.get("val") else None)
            self._built[key] = train, val
        return self._built[key]

    def steps(self, config):
        """Training steps per epoch under ``config``."""
        steps = self(config)[0].steps(0)
        return min(steps, config["train"]["steps_per_epoch"] or steps)


def train_stage(build, pipelines, config, run_dir, resume=False, callbacks=(), label=""):
    """Train one model in ``run_dir``; returns (trainer, history)."""
    train, val = pipelines(config)
    trainer = Trainer(build, train, val, TrainConfig(**config["train"]), run_dir, standard_callbacks(run_dir, callbacks), label=label)
    return trainer, trainer.fit(resume=resume)


def stacked_plan(config, members, pipelines, run_dir):
    """The plan of a GB U-Net or ensemble run (:mod:`nuclei_tf.train.plan`), one row per member
    then the second stage; building the rows fails at once on a member that cannot be built
    (e.g. ImageNet encoder weights missing offline)."""
    rows = []
    for m in members:
        label = f"member {m.index + 1}/{len(members)} {m.name}"
        if m.finished:
            rows.append(plan_row(label, f"reuse {m.model_path}", lambda m=m: load_member(str(m.model_path))))
        else:
            action = "resume" if (m.run_dir / "checkpoints" / "last").exists() else "train"
            rows.append(plan_row(label, f"{action} ({m.source}) in {m.run_dir}", lambda m=m: load_member(m.build_options),
                                 m.config, lambda m=m: pipelines.steps(m.config)))
    options = {**config["model"], "members": [m.build_options for m in members]}
    trains = config["arch"] != "ensemble"
    rows.append(plan_row(f"stage 2 {config['arch']}", f"{'train' if trains else 'assemble'} in {run_dir}",
                         lambda: build_model(config["arch"], **options), config if trains else None,
                         lambda: pipelines.steps(config)))
    return rows


def train_members(config, run_dir, pipelines, resume=False, report=print, **datasets):
    """Stage 1 (Lagree 2021 Fig. 1): print the plan, then train the members not yet trained, each
    in its own run folder (resumed from its checkpoint when one is there). Returns the
    members' ``.keras`` paths."""
    members = resolve_members(config["members"], config, run_dir)
    report(f"{config['arch']}: {len(members)} members, then stage 2 (estimated on this machine)")
    for row in stacked_plan(config, members, pipelines, run_dir):
        report(row.line())
    for m in members:
        if not m.finished:
            checkpoint = (m.run_dir / "checkpoints" / "last").exists()
            fit_run(m.config, m.run_dir, resume=checkpoint, label=f"member {m.index + 1}/{len(members)} {m.name}",
                    pipelines=pipelines, **datasets)
    return [str(m.model_path) for m in members]


def save_ensemble(build, run_dir):
    """The U-Net ensemble has no trainable weight: it is saved as ``best.keras`` without training."""
    model = build()
    model.save(Path(run_dir) / "best.keras")
    return model


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


def starting_model(config, model_options):
    """``build()`` of the model training starts from: a new ``arch``, with, when fine-tuning, the
    weights of the ``start_from`` model folder (built anew, so that it trains under this run's
    precision policy; its architecture and options are the config's, checked weight by weight)."""
    if config["start_from"] is None:
        return lambda: build_model(config["arch"], **model_options)
    from nuclei_tf.inference.shipped import resolve_model

    path = resolve_model(config["start_from"])
    path = path / "model.keras" if path.is_dir() else path

    def build():
        model, trained = build_model(config["arch"], **model_options), load_model(path)
        shapes = [w.shape for w in model.weights], [w.shape for w in trained.weights]
        if shapes[0] != shapes[1]:
            raise ValueError(f"{path}: its weights do not fit {config['arch']} with options {model_options} "
                             "(start_from needs the folder's own arch and model options)")
        model.set_weights(trained.get_weights())
        return model

    return build


def fit_run(config, run_dir, monuseg=None, tnbc=None, dsb=None, resume=False, callbacks=(), label="", pipelines=None):
    """Train ``config`` under its protocol into ``run_dir``; returns the summary dict. A GB U-Net
    or ensemble config first trains (or reuses) its members (:func:`train_members`)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    policy = set_precision(config["precision"])
    splits = split_protocol(config["protocol"], monuseg=monuseg, tnbc=tnbc, dsb=dsb, seed=config["seed"], data=config["dataset"])
    pipelines = pipelines or Pipelines(splits, run_dir / "cache")
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (run_dir / "environment.json").write_text(json.dumps(environment(policy), indent=2))
    (run_dir / "datasets.json").write_text(json.dumps(dataset_checksums({k: splits[k] for k in ("train", "val") if k in splits}), indent=1))
    started = time.time()
    model_options = dict(config["model"])
    if config["arch"] in STACKED:
        model_options["members"] = train_members(config, run_dir, pipelines, resume, monuseg=monuseg, tnbc=tnbc, dsb=dsb)
    build = starting_model(config, model_options)
    if config["arch"] == "ensemble":
        model, history, best = save_ensemble(build, run_dir), [], run_dir / "best.keras"
    else:
        trainer, history = train_stage(build, pipelines, config, run_dir, resume=resume, callbacks=callbacks,
                                       label=label or ("stage 2" if config["arch"] in STACKED else ""))
        model, best = trainer.model, trainer.best_path
    summary = {
        "arch": config["arch"],
        "protocol": config["protocol"],
        "seed": config["seed"],
        "precision": policy,
        "parameters": int(model.count_params()),
        "epochs": len(history),
        "best_val_loss": min((h.get("val_loss", h["loss"]) for h in history), default=None),
        "history": history,
        "best_model": str(best),
        "seconds": round(time.time() - started, 1),
        "images": {k: len(v) for k, v in splits.items()},
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    if history:
        plot_history(history, run_dir / "loss_curve.png")
    return summary
