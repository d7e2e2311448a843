"""Whole-slide-sized prediction: time and peak memory of `nuclei-tf predict`'s path (tiled
prediction, post-processing, the four output files) on a SIZE x SIZE image made by tiling
the shipped sample image.

    python benchmarks/bench_predict.py [--size 10000] [--model weights/unet_plus_b16] [--overlap 0.5]
"""
import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from machine import describe  # noqa: E402
from nuclei_tf.cli.predict import SAMPLE  # noqa: E402
from nuclei_tf.data.io import read_image  # noqa: E402
from nuclei_tf.inference import load_bundle, segment  # noqa: E402
from nuclei_tf.inference.outputs import write_outputs  # noqa: E402


def peak_rss_gib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=10000)
    parser.add_argument("--model", default=None)
    parser.add_argument("--overlap", type=float, default=None, help="override the model's tile overlap")
    parser.add_argument("--batch-size", type=int, default=8, help="tiles per model call")
    args = parser.parse_args()
    print(describe())
    bundle = load_bundle(args.model)
    if args.overlap is not None:
        bundle.overlap = args.overlap
    sample = read_image(SAMPLE)
    reps = -(-args.size // sample.shape[0])
    image = np.tile(sample, (reps, reps, 1))[: args.size, : args.size]
    before = peak_rss_gib()
    start = time.perf_counter()
    _, instances = segment(bundle, image, batch_size=args.batch_size, progress=True)
    segmented = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as out:
        write_outputs(image, instances, Path(out), "slide")
    total = time.perf_counter() - start
    print(f"image {args.size} x {args.size} ({image.nbytes / 2**30:.2f} GiB RGB), tile {bundle.tile}, "
          f"overlap {bundle.overlap}, batch {args.batch_size}")
    print(f"nuclei: {int(instances.max())} | segment {segmented:.0f} s | with outputs {total:.0f} s")
    print(f"peak RSS: {peak_rss_gib():.2f} GiB (process incl. TensorFlow; {before:.2f} GiB before predicting)")


if __name__ == "__main__":
    main()
