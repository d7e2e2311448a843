"""Does test-time augmentation help on images smaller than a tile? (issue 34)

Crops of several sizes from the **validation** images of a protocol (never a test image) are
segmented by the model folder three ways, and scored against their ground truth (the crop of
the instance map): the single padded pass, ``--tta`` as ``predict`` runs it (the 8 views of
each padded tile), and the 8 views of the crop each padded as the single pass pads it (its
geometry: image at the top-left, reflection at the bottom and right). Paired means per size
say below which size TTA costs accuracy, which sets :data:`~nuclei_tf.inference.bundle.TTA_MIN_SIDE`.

    python experiments/tta_small_images.py --monuseg ../shared/data/MoNuSeg --tnbc ../shared/data/TNBC \
        --out results/tta_small_images

Writes ``OUT/per_crop.csv`` and ``OUT/summary.md``.
"""
import argparse
import csv
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nuclei_tf.data import split_protocol  # noqa: E402
from nuclei_tf.inference import load_bundle  # noqa: E402
from nuclei_tf.inference.predict import predict_probability  # noqa: E402
from nuclei_tf.metrics import evaluate_instances  # noqa: E402

SIZES = (32, 48, 64, 96, 128, 192, 256)
METRICS = ("aji", "pq", "f1@0.5")


def dihedral_views(image):
    """(view, undo) pairs of the 8 flips and 90-degree rotations of an H x W [x C] array."""
    for turns in range(4):
        for flip in (False, True):
            view = np.rot90(image, turns)
            view = view[:, ::-1] if flip else view

            def undo(p, turns=turns, flip=flip):
                return np.rot90(p[:, ::-1] if flip else p, -turns)

            yield np.ascontiguousarray(view), undo


def crop_geometry_tta(bundle, crop):
    """The mean of the 8 views' probabilities, each view padded as the single pass pads a crop."""
    single = replace(bundle, tta=False)
    total = 0.0
    for view, undo in dihedral_views(crop):
        total = total + undo(predict_probability(single, view).astype(np.float32))
    return total / 8.0


def crop_starts(shape, size, count, rng):
    return [(int(rng.integers(0, shape[0] - size + 1)), int(rng.integers(0, shape[1] - size + 1))) for _ in range(count)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="model folder (default: the shipped one)")
    parser.add_argument("--monuseg", required=True)
    parser.add_argument("--tnbc", required=True)
    parser.add_argument("--protocol", default="lagree2021")
    parser.add_argument("--crops", type=int, default=8, help="crops per image and size")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    bundle = replace(load_bundle(args.model), tta=False)
    tta = replace(bundle, tta=True)
    validation = split_protocol(args.protocol, monuseg=args.monuseg, tnbc=args.tnbc)["val"]
    rng = np.random.default_rng(0)
    rows = []
    for record in tqdm(validation, desc="validation images"):
        sample = record.load()
        for size in SIZES:
            for top, left in crop_starts(sample.image.shape, size, args.crops, rng):
                crop = np.ascontiguousarray(sample.image[top : top + size, left : left + size])
                truth = sample.instances[top : top + size, left : left + size]
                ways = {"single": predict_probability(bundle, crop), "tta": predict_probability(tta, crop),
                        "tta_crop_geometry": crop_geometry_tta(bundle, crop)}
                for way, probability in ways.items():
                    scores = evaluate_instances(truth, bundle.postprocess(np.asarray(probability, np.float32)))
                    rows.append({"image": record.id, "size": size, "top": top, "left": left, "way": way,
                                 **{m: scores[m] for m in METRICS}})
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "per_crop.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    lines = [f"# TTA on small crops of the {args.protocol} validation images ({len(validation)} images, "
             f"{args.crops} crops each per size; model {args.model or 'shipped default'})", "",
             "Paired means over crops; `tta - single` and its standard error.", "",
             "| size | crops | " + " | ".join(f"{m} single | {m} tta - single (se) | {m} crop-geometry tta - single (se)"
                                          for m in METRICS) + " |",
             "|---" * (2 + 3 * len(METRICS)) + "|"]
    for size in SIZES:
        by_way = {w: np.array([[r[m] for m in METRICS] for r in rows if r["size"] == size and r["way"] == w])
                  for w in ("single", "tta", "tta_crop_geometry")}
        n = len(by_way["single"])
        cells = []
        for i, _ in enumerate(METRICS):
            cells.append(f"{by_way['single'][:, i].mean():.3f}")
            for way in ("tta", "tta_crop_geometry"):
                diff = by_way[way][:, i] - by_way["single"][:, i]
                cells.append(f"{diff.mean():+.3f} ({diff.std(ddof=1) / np.sqrt(n):.3f})")
        lines.append(f"| {size} | {n} | " + " | ".join(cells) + " |")
    (args.out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
