"""Predict time of model folders side by side on one 1000 x 1000 H&E image (a MoNuSeg test image):
``segment()`` (stain normalisation, tiled model, post-processing), best of ``--repeats`` after a
warm-up, in one process, the folders taking turns.

    python benchmarks/bench_model_folders.py --image IMAGE.tif FOLDER_OR_NAME... [--repeats 3]
"""
import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from machine import describe  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("models", nargs="+", help="model folders or shipped model names")
    parser.add_argument("--image", required=True, help="an RGB image, e.g. a 1000 x 1000 MoNuSeg test image")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from nuclei_tf.data.io import read_image
    from nuclei_tf.inference import load_bundle, segment

    print(describe())
    image = read_image(args.image)
    bundles = {name: load_bundle(name) for name in args.models}
    times = {name: [] for name in bundles}
    counts = {}
    for name, bundle in bundles.items():  # warm-up: tracing, first allocations
        counts[name] = int(segment(bundle, image)[1].max())
    for _ in range(args.repeats):
        for name, bundle in bundles.items():
            start = time.perf_counter()
            segment(bundle, image)
            times[name].append(time.perf_counter() - start)
    print(f"image {args.image}: {image.shape[1]} x {image.shape[0]} px")
    for name, bundle in bundles.items():
        scheme = f"{bundle.tile} px tiles, {bundle.margin} px margin" if bundle.margin else f"{bundle.tile} px tiles, overlap {bundle.overlap}"
        print(f"{name}: {min(times[name]):.2f} s (best of {args.repeats}; {bundle.model.count_params():,} parameters; "
              f"{scheme}; {counts[name]} nuclei)")


if __name__ == "__main__":
    main()
