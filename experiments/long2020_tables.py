"""Long 2020 Tables 1-2 in one go: train the eight ``experiments/long2020-*.yaml`` models with
``keras.Model.fit`` under any Keras 3 backend, then time inference per 256 px patch.

The recipe is the YAMLs' (the same ``PipelineConfig``, preprocessing, architectures and loss
that ``nuclei-tf fit --config`` uses); only the loop differs: Keras's own ``fit``, as in the
paper (Keras 2.2.4), so that it also runs where TensorFlow is absent (the GPU machines lent
here have JAX: ``KERAS_BACKEND=jax``). Every experiment shares its data recipe, so the
augmented patches of every epoch are drawn once, by a process pool, into memory-mapped
files; then one training process per model runs, all at once, each keeping the weights of
its lowest validation loss (``<name>/best.weights.h5``, ``history.csv``, ``summary.json``).
Weights load into the TensorFlow-backend models for ``nuclei-tf`` evaluation (see README).

    KERAS_BACKEND=jax python experiments/long2020_tables.py --dsb ROOT --out DIR \\
        [--configs experiments/long2020-*.yaml] [--precision auto] [--deadline SECONDS]

Where TensorFlow is absent the script needs, besides numpy/scipy/scikit-image/OpenCV/Pillow/PyYAML
and a Keras backend: keras (3.15), namex, optree, albumentations (2.0.8) with albucore,
stringzilla, simsimd, pydantic, pydantic-core, annotated-types and typing-inspection; and only
``stage1_train/`` with ``stage1_train_labels.csv`` of the DSB download (38 MB, no test set).

``--steps N``, ``--epochs N`` and ``--fine-tune-epochs N`` shorten every run (a one-step check
on a CPU before a GPU run; a CPU run that must end in time). ``--deadline`` stops training (between epochs, saying so in ``summary.json``) so that the
whole script ends in time.
"""
import argparse
import csv
import glob
import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nuclei_tf.data.pipeline import PipelineConfig, TrainingPipeline, prepare  # noqa: E402
from nuclei_tf.data.dsb import DSB2018  # noqa: E402
from nuclei_tf.data.protocols import long2020_train_val  # noqa: E402
from nuclei_tf.preprocess.configured import make_preprocess  # noqa: E402
from nuclei_tf.train.config import load_config  # noqa: E402

#: the paper's timing set: "53 images, 174 patches" of 256 x 256
TIMING_PATCHES = 174


def shared_recipe(configs):
    """The data recipe every config must share (protocol, seed, data and preprocess sections)."""
    keys = ("protocol", "seed", "data", "preprocess")
    recipes = {json.dumps({k: c[k] for k in keys}, sort_keys=True) for c in configs.values()}
    if len(recipes) != 1:
        raise SystemExit("the configs differ in protocol/seed/data/preprocess: run them in separate calls")
    return {k: next(iter(configs.values()))[k] for k in keys}


# ---- stage 1: data, drawn once (fork-shared by a process pool) -------------------------------
_STATE = {}


def _prepare_chunk(records):
    recipe = _STATE["recipe"]
    return prepare(records, PipelineConfig.from_dict(recipe["data"]), make_preprocess(recipe["preprocess"]))


def _write_examples(job):
    prefix, epoch, positions, items = job
    pipeline = _STATE["pipeline"]
    images = np.load(prefix + ".x.npy", mmap_mode="r+")
    targets = np.load(prefix + ".y.npy", mmap_mode="r+")
    for k, item in zip(positions, items):
        image, target, _ = pipeline.example(epoch or 0, k, item)
        images[k], targets[k] = image.astype(np.float16), target.astype(np.uint8)
    images.flush()
    targets.flush()
    return len(positions)


def epoch_prefix(folder, epoch):
    """Path prefix of a drawn epoch; ``None`` is the validation stream."""
    return str(folder / ("val" if epoch is None else f"epoch-{epoch}"))


def draw(pipeline, epoch, folder, pool, workers):
    """Write every example of ``epoch`` as ``<prefix>.{x,y}.npy`` (float16 image, uint8 target),
    then ``<prefix>.done``; the pool was forked after ``_STATE["pipeline"]`` was set."""
    items = pipeline.items(epoch or 0)
    prefix = epoch_prefix(folder, epoch)
    size, channels = pipeline.size, pipeline.prepared[0].image.shape[-1]
    np.lib.format.open_memmap(prefix + ".x.npy", "w+", np.float16, (len(items), size, size, channels))
    np.lib.format.open_memmap(prefix + ".y.npy", "w+", np.uint8, (len(items), size, size, 1))
    jobs = [(prefix, epoch, chunk, items[chunk]) for chunk in np.array_split(np.arange(len(items)), workers) if len(chunk)]
    count = sum(pool.map(_write_examples, jobs))
    Path(prefix + ".done").write_text(f"{count}\n")
    return count


class DrawnEpochs:
    """Long 2020's patches of every epoch, drawn once for all models by a process pool.

    ``start()`` prepares the images (loading, CLAHE + TV) and draws the validation stream and
    epoch 0; ``finish()`` draws the other epochs while the models already train on the first."""

    def __init__(self, recipe, dsb, folder, epochs, workers):
        if recipe["protocol"] != "long2020":
            raise SystemExit(f"these are Long 2020's experiments; got protocol {recipe['protocol']!r}")
        self.recipe, self.dsb, self.folder, self.epochs, self.workers = recipe, dsb, Path(folder), epochs, workers
        self.info = {}

    def start(self):
        started = time.time()
        splits = long2020_train_val(DSB2018(Path(self.dsb) / "stage1_train"), self.recipe["seed"])  # no test set needed
        data_config = PipelineConfig.from_dict(self.recipe["data"])
        _STATE["recipe"] = self.recipe
        with multiprocessing.get_context("fork").Pool(self.workers) as pool:
            chunks = [list(c) for split in ("train", "val") for c in np.array_split(splits[split], self.workers) if len(c)]
            parts = pool.map(_prepare_chunk, chunks)
        prepared = [p for part in parts for p in part]
        n_train = len(splits["train"])
        self.folder.mkdir(parents=True, exist_ok=True)
        self.train = TrainingPipeline(prepared[:n_train], data_config)
        self.info = {"train_images": n_train, "val_images": len(splits["val"]), "prepare_seconds": round(time.time() - started, 1)}
        _STATE["pipeline"] = TrainingPipeline(prepared[n_train:], data_config, training=False)
        with multiprocessing.get_context("fork").Pool(self.workers) as pool:
            self.info["val_patches"] = draw(_STATE["pipeline"], None, self.folder, pool, self.workers)
        _STATE["pipeline"] = self.train
        self.pool = multiprocessing.get_context("fork").Pool(self.workers)
        self.info["train_patches"] = [draw(self.train, 0, self.folder, self.pool, self.workers)]

    def finish(self):
        started = time.time()
        for epoch in range(1, self.epochs):
            self.info["train_patches"].append(draw(self.train, epoch, self.folder, self.pool, self.workers))
        self.pool.close()
        self.info["draw_seconds_after_start"] = round(time.time() - started, 1)
        (self.folder / "data.json").write_text(json.dumps(self.info, indent=2))
        return self.info


def wait_for(prefix, deadline):
    """Block until epoch ``prefix`` is drawn; False if the deadline passes first."""
    while not Path(prefix + ".done").is_file():
        if deadline and time.time() > deadline:
            return False
        time.sleep(0.2)
    return True


def capped(train, epochs=None, fine_tune_epochs=None):
    """The train section with ``epochs`` and ``fine_tune_epochs`` capped where given (a shortened run)."""
    train = dict(train)
    if epochs is not None:
        train["epochs"] = min(epochs, train["epochs"])
    if fine_tune_epochs is not None:
        train["fine_tune_epochs"] = min(fine_tune_epochs, train["fine_tune_epochs"])
    return train


# ---- stage 2: one training process per model -------------------------------------------------
def batches(prefix, batch_size, training):
    """A ``keras.utils.PyDataset`` over one memory-mapped epoch (3-channel float32 images)."""
    import keras

    class Patches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.x = np.load(prefix + ".x.npy", mmap_mode="r")
            self.y = np.load(prefix + ".y.npy", mmap_mode="r")
            # the drawn order is already shuffled per epoch (TrainingPipeline.items)
            self.n = len(self.x) // batch_size if training else -(-len(self.x) // batch_size)

        def __len__(self):
            return self.n

        def __getitem__(self, index):
            rows = slice(index * batch_size, (index + 1) * batch_size)
            return np.asarray(self.x[rows], np.float32), np.asarray(self.y[rows], np.float32)

    return Patches()


def train_one(config_path, data_dir, out_dir, precision, steps, epochs, fine_tune_epochs, deadline):
    """Train one experiment on the drawn epochs; keep the lowest-validation-loss weights.

    ``deadline`` (a ``time.time()`` value or None): no epoch starts that would end after it."""
    import keras

    from nuclei_tf.models import build_model
    from nuclei_tf.train.losses import get_loss

    config = load_config(config_path)
    train = capped(config["train"], epochs, fine_tune_epochs)
    out_dir.mkdir(parents=True, exist_ok=True)
    precision = resolve_precision(precision)
    keras.mixed_precision.set_global_policy(precision)
    keras.utils.set_random_seed(config["seed"])
    model = build_model(config["arch"], **config["model"])
    loss = get_loss(train["loss"])
    adam = keras.optimizers.Adam(train["learning_rate"])
    model.compile(optimizer=adam, loss=lambda y_true, y_pred: loss(y_true, y_pred))
    batch_size = config["data"]["batch_size"]
    val = batches(epoch_prefix(data_dir, None), batch_size, False)
    history, best, started, stopped = [], float("inf"), time.time(), None
    total = train["epochs"] + train["fine_tune_epochs"]
    for epoch in range(total):
        if epoch == train["epochs"]:
            adam.learning_rate = train["fine_tune_learning_rate"]
        elapsed = time.time() - started
        if deadline and history and time.time() + elapsed / len(history) > deadline:
            stopped = f"deadline: stopped after {epoch} of {total} epochs"
            break
        if not wait_for(epoch_prefix(data_dir, epoch), deadline):
            stopped = f"deadline: epoch {epoch + 1} was not drawn in time"
            break
        data = batches(epoch_prefix(data_dir, epoch), batch_size, True)
        tic = time.time()
        logs = model.fit(data, validation_data=val, epochs=1, steps_per_epoch=steps or None, verbose=0).history
        row = {"epoch": epoch + 1, "loss": logs["loss"][-1], "val_loss": logs["val_loss"][-1],
               "learning_rate": float(np.asarray(adam.learning_rate)), "seconds": round(time.time() - tic, 2)}
        history.append(row)
        print(f"{out_dir.name} epoch {epoch + 1}/{total} loss {row['loss']:.4f} val_loss {row['val_loss']:.4f} ({row['seconds']} s)", flush=True)
        if row["val_loss"] < best:
            best = row["val_loss"]
            model.save_weights(out_dir / "best.weights.h5")
    with open(out_dir / "history.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
    summary = {"config": str(config_path), "arch": config["arch"], "model": config["model"], "train": train,
               "parameters": int(model.count_params()), "precision": precision, "backend": keras.backend.backend(),
               "keras": keras.__version__, "best_val_loss": best, "epochs_run": len(history),
               "training_seconds": round(time.time() - started, 1), "stopped": stopped}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))


# ---- stage 3: inference time per patch, one model at a time -----------------------------------
def time_models(out, names, precision, repeats=5, stop_at=None):
    """GPU ms/patch as the paper measures it: 174 patches one at a time, mean of ``repeats`` passes;
    also the throughput of batches of 16. Models not started by ``stop_at`` are skipped."""
    import keras

    from nuclei_tf.models import build_model

    keras.mixed_precision.set_global_policy(resolve_precision(precision))
    rng = np.random.default_rng(0)
    patches = rng.random((TIMING_PATCHES, 256, 256, 3), dtype=np.float32)
    timings = {}
    for name in names:
        if stop_at and time.time() > stop_at:
            timings[name] = "skipped: out of time"
            continue
        summary = json.loads((out / name / "summary.json").read_text())
        model = build_model(summary["arch"], **summary["model"])

        for warm_up in (patches[:1], patches[:16]):  # compile both shapes before timing
            np.asarray(model.predict_on_batch(warm_up))
        passes = []
        for _ in range(repeats):
            tic = time.perf_counter()
            for k in range(TIMING_PATCHES):
                np.asarray(model.predict_on_batch(patches[k : k + 1]))
            passes.append((time.perf_counter() - tic) / TIMING_PATCHES * 1000)
        tic = time.perf_counter()
        for k in range(0, 160, 16):
            np.asarray(model.predict_on_batch(patches[k : k + 16]))
        batched = (time.perf_counter() - tic) / 160 * 1000
        timings[name] = {"ms_per_patch_batch1": float(np.mean(passes)), "ms_per_patch_batch1_runs": passes,
                         "ms_per_patch_batch16": batched}
        print(f"{name}: {np.mean(passes):.2f} ms/patch (batch 1), {batched:.2f} ms/patch (batch 16)", flush=True)
    return timings


def resolve_precision(precision):
    """``auto`` -> mixed_float16 when the Keras backend sees a GPU, else float32."""
    if precision != "auto":
        return precision
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        gpu = any(d.platform == "gpu" for d in jax.devices())
    elif backend == "tensorflow":
        import tensorflow as tf

        gpu = bool(tf.config.list_physical_devices("GPU"))
    elif backend == "torch":
        import torch

        gpu = torch.cuda.is_available()
    else:
        gpu = False
    return "mixed_float16" if gpu else "float32"


def environment():
    import keras

    info = {"keras": keras.__version__, "backend": keras.backend.backend(), "python": sys.version.split()[0]}
    if keras.backend.backend() == "jax":
        import jax

        info.update(jax=jax.__version__, devices=[str(d) for d in jax.devices()],
                    device_kind=[d.device_kind for d in jax.devices()])
    return info


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsb", help="DSB-2018 root holding stage1_train/ and stage1_train_labels.csv")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--configs", nargs="+", default=sorted(glob.glob(str(Path(__file__).parent / "long2020-*.yaml"))))
    parser.add_argument("--precision", default="auto", choices=["auto", "float32", "mixed_float16"],
                        help="auto: mixed_float16 on a GPU, float32 on a CPU (about 6x faster there)")
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--data", type=Path, help="folder for the drawn epochs (default OUT/data)")
    parser.add_argument("--steps", type=int, help="batches per epoch (a quick check)")
    parser.add_argument("--epochs", type=int, help="cap on epochs (a shortened run)")
    parser.add_argument("--fine-tune-epochs", type=int, help="cap on fine-tuning epochs (a shortened run)")
    parser.add_argument("--skip-timing", action="store_true", help="no inference timing (e.g. on a busy CPU)")
    parser.add_argument("--deadline", type=float, help="seconds from start after which no epoch starts")
    parser.add_argument("--train-one", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    deadline = args.deadline and time.time() + args.deadline
    data_dir = args.data or args.out / "data"
    if args.train_one:
        train_one(args.train_one, data_dir, args.out, args.precision, args.steps, args.epochs, args.fine_tune_epochs, deadline)
        return
    started = time.time()
    configs = {Path(p).stem: load_config(p) for p in args.configs}
    recipe = shared_recipe(configs)
    shortened = [capped(c["train"], args.epochs, args.fine_tune_epochs) for c in configs.values()]
    epochs = max(t["epochs"] + t["fine_tune_epochs"] for t in shortened)
    drawn = DrawnEpochs(recipe, args.dsb, data_dir, epochs, args.workers)
    drawn.start()
    print(f"data (validation and epoch 1): {json.dumps(drawn.info)}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    children = {}
    for name, path in zip(configs, args.configs):
        command = [sys.executable, __file__, "--out", str(args.out / name), "--data", str(data_dir),
                   "--train-one", path, "--precision", args.precision]
        command += ["--steps", str(args.steps)] if args.steps else []
        command += ["--epochs", str(args.epochs)] if args.epochs is not None else []
        command += ["--fine-tune-epochs", str(args.fine_tune_epochs)] if args.fine_tune_epochs is not None else []
        command += ["--deadline", str(max(1.0, deadline - time.time()))] if deadline else []
        log = open(args.out / f"{name}.log", "w")
        children[name] = (subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT), log)
    data = drawn.finish()
    print(f"data: {json.dumps(data)}", flush=True)
    failed = []
    for name, (process, log) in children.items():
        try:  # a child past the deadline by a minute (a hung compile, say) is stopped
            code = process.wait(timeout=max(1.0, deadline + 60 - time.time()) if deadline else None)
        except subprocess.TimeoutExpired:
            process.kill()
            code = "killed after the deadline"
        if code:
            failed.append(f"{name}: {code}")
        log.close()
    trained = [n for n in configs if (args.out / n / "summary.json").is_file()]
    timings = {} if args.skip_timing else time_models(args.out, trained, args.precision, stop_at=deadline and deadline + 120)
    report = {"environment": environment(), "data": data, "failed": failed, "timings": timings,
              "seconds": round(time.time() - started, 1)}
    (args.out / "report.json").write_text(json.dumps(report, indent=2))
    print(json.dumps({k: report[k] for k in ("failed", "seconds")}), flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
