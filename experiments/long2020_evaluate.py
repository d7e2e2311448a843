"""Long 2020 Tables 1-2, evaluation: every model trained by ``long2020_tables.py`` becomes a
model folder with Long's inference and is scored on the 53 grey-scale stage-1 test images.

Inference as the paper's "Predictions post-processing": CLAHE + TV, 256 px patches on the grid
with re-crops flush with the image edges (``overlap 0``), overlapping predictions merged by
their maximum, threshold 0.5, holes filled and objects smaller than ``min_size`` removed. The
paper's size is "approximately ... several hundred pixels"; we choose it on the **validation
split** (446:111 of stage1_train) by the paper's average IOU, among ``MIN_SIZES``. Then
``nuclei-tf evaluate``'s code scores the test set with every metric (Long's readings included).

    python experiments/long2020_evaluate.py --runs runs/long2020 --dsb ../shared/data/DSB2018 --out results/long2020

Writes ``RUNS/<name>/bundle/`` (the model folder, for ``nuclei-tf evaluate --model``) and
``OUT/<name>/`` (per_image.csv, summary.md/.json: the test set, and the validation split at the
chosen size; the training history) and ``OUT/tables.json``
(updated model by model; ``--only`` evaluates some runs).
"""
import argparse
import json
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nuclei_tf.data import split_protocol  # noqa: E402
from nuclei_tf.evaluation import evaluate_splits, model_predictor, write_reports  # noqa: E402
from nuclei_tf.evaluation.runner import long2020_extra  # noqa: E402
from nuclei_tf.inference import ModelBundle, save_bundle  # noqa: E402
from nuclei_tf.inference.predict import predict_probability  # noqa: E402
from nuclei_tf.metrics import long2020_scores  # noqa: E402
from nuclei_tf.models import build_model  # noqa: E402
from nuclei_tf.postprocess import PostProcess, probability_to_instances  # noqa: E402

#: candidate minimum object sizes (pixels); 0 keeps everything
MIN_SIZES = (0, 16, 32, 64, 128, 256)


def long2020_bundle(summary, weights, precision="auto"):
    """The trained model with Long's inference settings (min_size chosen later); ``precision``:
    the model's arithmetic (auto: bfloat16 on CPUs with AVX512-BF16/AMX, else float32)."""
    model = build_model(summary["arch"], **summary["model"])
    model.load_weights(weights)
    post = PostProcess(threshold=0.5, fill=True, min_size=0, split="none")
    return ModelBundle(model, clahe_tv=True, tile=256, overlap=0.0, blend="max", postprocess=post, precision=precision)


def choose_min_size(bundle, records):
    """The ``MIN_SIZES`` entry with the best mean average IOU (Long's reading) on ``records``,
    the table of every entry's score, and the probability maps by record id (for the report)."""
    samples = [r.load() for r in records]
    probabilities = [predict_probability(bundle, s.image) for s in tqdm(samples, desc="validation", leave=False)]
    scores = {}
    for size in MIN_SIZES:
        post = replace(bundle.postprocess, min_size=size)
        scores[size] = float(np.mean([
            long2020_scores(s.instances, probability_to_instances(p, post))["long_avg_iou"]
            for s, p in zip(samples, probabilities)
        ]))
    best = max(scores, key=lambda size: (scores[size], -size))
    return best, scores, {r.id: p for r, p in zip(records, probabilities)}


def reusing_validation(bundle, probabilities):
    """A predictor for ``evaluate_splits``: validation images from their maps already computed,
    the others segmented by the bundle."""
    segment_image = model_predictor(bundle)

    def predict(split, record, sample):
        if split == "val":
            return probability_to_instances(probabilities[record.id], bundle.postprocess)
        return segment_image(split, record, sample)

    return predict


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, required=True, help="OUT folder of long2020_tables.py")
    parser.add_argument("--dsb", required=True, help="DSB-2018 root (stage1_train/, stage1_test/, the CSVs)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--only", nargs="+", help="evaluate only these runs (folder names)")
    parser.add_argument("--precision", choices=("auto", "float32", "bfloat16"), default="auto",
                        help="inference arithmetic (auto: bfloat16 on CPUs with AVX512-BF16/AMX, else float32)")
    args = parser.parse_args()
    splits = split_protocol("long2020", dsb=args.dsb, seed=0)
    tables_path = args.out / "tables.json"
    tables = json.loads(tables_path.read_text()) if tables_path.is_file() else {}
    for run in sorted(p.parent for p in args.runs.glob("*/summary.json")):
        if args.only and run.name not in args.only:
            continue
        summary = json.loads((run / "summary.json").read_text())
        bundle = long2020_bundle(summary, run / "best.weights.h5", args.precision)
        size, scores, probabilities = choose_min_size(bundle, splits["val"])
        bundle.postprocess = replace(bundle.postprocess, min_size=size)
        bundle.info = {"arch": summary["arch"], "protocol": "long2020", "trained_with": summary,
                       "calibration": {"split": "val", "images": len(splits["val"]), "metric": "long_avg_iou",
                                       "min_size": size, "table": scores}}
        save_bundle(bundle, run / "bundle")
        rows, summaries = evaluate_splits({"val": splits["val"], "test": splits["test"]},
                                          reusing_validation(bundle, probabilities), extra_scores=long2020_extra)
        out = args.out / run.name
        write_reports(rows, summaries, out, f"{run.name} on long2020", {"method": run.name, "protocol": "long2020", "seed": 0})
        for name in ("history.csv", "summary.json"):
            shutil.copy(run / name, out / f"training_{name}")
        long_scores = json.loads((out / "summary.json").read_text())["long2020"]
        pixel = {key: summaries["val"]["mean"][key] for key in ("pixel_precision", "pixel_recall", "pixel_dice")}
        tables[run.name] = {**long_scores["test"], "min_size": size, "precision": bundle.runs_at,
                            "validation": {**long_scores["val"], **pixel}, "parameters": summary["parameters"],
                            "epochs_run": summary["epochs_run"], "stopped": summary["stopped"]}
        print(f"{run.name}: min_size {size}, average IOU {tables[run.name]['long_avg_iou_mean']:.4f} "
              f"+- {tables[run.name]['long_avg_iou_std']:.4f}, precision {tables[run.name]['long_precision_mean']:.4f}", flush=True)
        tables_path.write_text(json.dumps(dict(sorted(tables.items())), indent=2))


if __name__ == "__main__":
    main()
