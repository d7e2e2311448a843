"""The rays head's two halves side by side on one image (a 1000 x 1000 MoNuSeg test image): the
model (``predict_probability``: stain normalisation, tiles, the 33 outputs) and the polygon
post-processing (candidates, suppression, painting: ``probability_to_instances``), best of
``--repeats`` after a warm-up, in one process. Issue 31 asks for post-processing under the model's time.

    python benchmarks/bench_polygons.py FOLDER --image IMAGE.tif [--repeats 3]
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


def best_of(repeats, function):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return min(times), result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model", help="a rays model folder (split 'polygons')")
    parser.add_argument("--image", required=True)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import numpy as np

    from nuclei_tf.data.io import read_image
    from nuclei_tf.inference import load_bundle
    from nuclei_tf.inference.predict import predict_probability
    from nuclei_tf.postprocess import probability_to_instances

    print(describe())
    bundle = load_bundle(args.model)
    if bundle.postprocess.split != "polygons":
        raise SystemExit(f"{args.model}: not a rays model folder (split {bundle.postprocess.split!r})")
    image = read_image(args.image)
    outputs = predict_probability(bundle, image)  # warm-up: tracing, compiled kernels
    probability_to_instances(outputs, bundle.postprocess)
    model, outputs = best_of(args.repeats, lambda: predict_probability(bundle, image))
    post, instances = best_of(args.repeats, lambda: probability_to_instances(outputs, bundle.postprocess))
    candidates = int(np.count_nonzero(outputs[..., -1] > bundle.postprocess.threshold))
    print(f"image {args.image}: {image.shape[1]} x {image.shape[0]} px; {bundle.postprocess_summary()}")
    print(f"model: {model:.3f} s; polygon post-processing: {post:.3f} s ({post / model:.2f}x the model; "
          f"{candidates:,} candidates, {int(instances.max())} nuclei; best of {args.repeats})")


if __name__ == "__main__":
    main()
