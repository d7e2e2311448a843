"""Fine-tune the shipped model on 3 annotated TNBC images and score it on patients it never saw.

What a pathologist does with their own annotations, end to end, with the commands they would run:

1. Lay the annotated images out as ``ROOT/images`` + ``ROOT/labels`` (``nuclei-tf import-annotations``
   does it from QuPath; here the TNBC ground truth stands in for the annotations): one image from
   each of 3 patients to train on, one from a 4th patient to calibrate on (``ROOT/val``), and every
   image of the other patients as a test set (``ROOT/test``), so nothing scored was seen.
2. ``nuclei-tf fit --data ROOT --from`` (the shipped unet_plus_b16: its architecture, Macenko
   normalisation and head) for a few minutes.
3. ``nuclei-tf calibrate RUN/best.keras --tiling margin --out MODEL`` on the validation image.
4. ``nuclei-tf evaluate`` of the shipped model and of the fine-tuned one on ``ROOT/test``.

Run from the repository root (CPU, about 4 minutes on 2 cores with the defaults)::

    python examples/fine_tune_tnbc.py --tnbc ../shared/data/TNBC --out runs/example_fine_tune

and compare ``OUT/shipped/summary.md`` with ``OUT/tuned/summary.md`` (``OUT/comparison.md`` has both).
"""
import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from nuclei_tf.data import TNBC

TRAIN_PATIENTS, VAL_PATIENT = ("01", "02", "03"), "04"
COLUMNS = ("aji", "pq", "f1@0.5", "precision@0.5", "recall@0.5")


def lay_out(tnbc_root, root):
    """ROOT/images + labels (3 patients, one image each), ROOT/val (one image of a 4th) and ROOT/test
    (every image of the other patients), with dataset.json (TNBC: 40x, about 0.25 um/px)."""
    records = TNBC(tnbc_root).records()
    first = {}
    for record in records:
        first.setdefault(record.patient, record)
    chosen = {"": [first[p] for p in TRAIN_PATIENTS], "val": [first[VAL_PATIENT]],
              "test": [r for r in records if r.patient not in (*TRAIN_PATIENTS, VAL_PATIENT)]}
    for sub, split in chosen.items():
        for folder in ("images", "labels"):
            (root / sub / folder).mkdir(parents=True, exist_ok=True)
        for record in split:
            sample = record.load()
            Image.fromarray(sample.image).save(root / sub / "images" / f"{record.id}.png")
            tifffile.imwrite(root / sub / "labels" / f"{record.id}.tif", sample.instances.astype(np.uint16))
    (root / "dataset.json").write_text(json.dumps({"mpp": 0.25, "labels": "instances"}))
    return {name or "train": len(split) for name, split in chosen.items()}


def nuclei_tf(*args):
    """Run one ``nuclei-tf`` command as a user would (its own process), stopping at the first failure."""
    command = [sys.executable, "-m", "nuclei_tf", *map(str, args)]
    print("$ nuclei-tf " + " ".join(map(str, args)), flush=True)
    subprocess.run(command, check=True)


def write_comparison(out, tests, learning_rate, seed):
    """OUT/comparison.md: both models' test means, and which epoch of the fine-tuning was kept."""
    run = json.loads((out / "run" / "summary.json").read_text())
    best = min(run["history"], key=lambda row: row["val_loss"])
    lines = [f"# Fine-tuning on 3 TNBC images (patients {', '.join(TRAIN_PATIENTS)}), calibrated on patient {VAL_PATIENT}",
             "", f"Test: {tests} images of the other patients (per-image means). Fine-tuning: {run['epochs']} epochs at "
             f"learning rate {learning_rate}, seed {seed}, {run['seconds']:.0f} s; kept: epoch {best['epoch']} (validation loss "
             f"{best['val_loss']:.4f}).", "",
             "| model | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for name in ("shipped", "tuned"):
        mean = json.loads((out / name / "summary.json").read_text())["splits"]["test"]["mean"]
        lines.append(f"| {name} | " + " | ".join(f"{mean[c]:.4f}" for c in COLUMNS) + " |")
    (out / "comparison.md").write_text("\n".join(lines) + "\n")


def main(argv=None, run=nuclei_tf):
    """The example; ``run(*args)`` runs one ``nuclei-tf`` command (default: in its own process)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tnbc", type=Path, required=True, help="TNBC root (Slide_XX/, GT_XX/).")
    parser.add_argument("--out", type=Path, default=Path("runs/example_fine_tune"))
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--steps-per-epoch", type=int, default=12)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=0, help="Seed of the training (the split is fixed by patient).")
    parser.add_argument("--tiling", choices=["margin", "blend"], default="margin")
    args = parser.parse_args(argv)
    root = args.out / "data"
    counts = lay_out(args.tnbc, root)
    print(f"images: {counts}")
    run("fit", "--data", root, "--from", "--epochs", args.epochs, "--steps-per-epoch", args.steps_per_epoch,
        "--learning-rate", args.learning_rate, "--seed", args.seed, "--out", args.out / "run", "--overwrite")
    run("calibrate", args.out / "run" / "best.keras", "--tiling", args.tiling, "--out", args.out / "model")
    for name, model in (("shipped", "unet_plus_b16"), ("tuned", args.out / "model")):
        run("evaluate", "--model", model, "--data", root, "--split", "test", "--out", args.out / name)
    write_comparison(args.out, counts["test"], args.learning_rate, args.seed)
    print(f"comparison written to {args.out / 'comparison.md'}")


if __name__ == "__main__":
    main()
