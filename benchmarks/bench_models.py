"""Inference speed of U-Net, U-Net+ (T.C. and U.S.) and UNet++ at B = 16 and 8, N = 5 (Long 2020
Tables 1 and 2).

Run as ``python benchmarks/bench_models.py [--batch 16] [--size 256] [--repeats 5] [--base-filters 16 8]``.
Prints weights, convolution GMAC/patch, patches/s and ms/patch per model (best of ``--repeats``
timed batches after a warm-up; the models take turns) in float32, and with a GPU also under
mixed_float16, then compares the ordering with Long 2020's GPU times. ``--batch 1`` times
patches one at a time, as the paper's per-patch figure over its 174 test patches.
"""
import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from machine import describe  # noqa: E402
from nuclei_tf.models import build_model  # noqa: E402

#: name -> (arch, options, Long 2020 GPU ms/patch: {B: Table 1 (B = 16) or Table 2 (B = 8)})
MODELS = {
    "U-Net": ("unet", {}, {16: 14.9, 8: 9.5}),
    "U-Net+ (T.C.)": ("unet_plus", {"upsampling": "transpose"}, {16: 15.3, 8: 12.4}),
    "U-Net+ (U.S.)": ("unet_plus", {"upsampling": "upsample"}, {16: 21.5, 8: 14.0}),
    "UNet++": ("unetpp", {}, {16: 22.0, 8: 14.1}),
}
#: Long 2020: U-Net ~ U-Net+ T.C. are faster than U-Net+ U.S. ~ UNet++
FAST, SLOW = {"U-Net", "U-Net+ (T.C.)"}, {"U-Net+ (U.S.)", "UNet++"}


def giga_macs(model):
    """Multiply-accumulates of the model's convolutions for one patch, in billions."""
    total = 0
    for layer in model.layers:
        transpose = isinstance(layer, keras.layers.Conv2DTranspose)
        if transpose or isinstance(layer, keras.layers.Conv2D):
            height, width = (layer.input if transpose else layer.output).shape[1:3]
            kernel = np.prod(layer.kernel_size) * layer.input.shape[-1] * layer.filters // getattr(layer, "groups", 1)
            total += height * width * kernel
    return total / 1e9


def run(policy, args, base_filters):
    """``{name: best ms/patch}`` for every model under dtype ``policy``.

    The models' timed batches are interleaved, so that a change in the machine's load hits all alike.
    """
    keras.mixed_precision.set_global_policy(policy)
    images = tf.constant(np.random.default_rng(0).random((args.batch, args.size, args.size, 3), dtype=np.float32))
    models, forwards = {}, {}
    for name, (arch, options, _) in MODELS.items():
        models[name] = build_model(arch, base_filters=base_filters, depth=5, input_shape=images.shape[1:], **options)
        forwards[name] = tf.function(lambda x, model=models[name]: model(x, training=False))
        forwards[name](images).numpy()  # trace and warm up
    times = {name: [] for name in MODELS}
    for _ in range(args.repeats):
        for name, forward in forwards.items():
            start = time.perf_counter()
            forward(images).numpy()
            times[name].append(1e3 * (time.perf_counter() - start) / args.batch)
    for name, model in models.items():
        best, median = min(times[name]), float(np.median(times[name]))
        print(
            f"  {name:<14} {model.count_params() / 1e6:6.3f}M weights {giga_macs(model):6.2f} GMAC/patch  "
            f"{1e3 / best:7.1f} patches/s  {best:8.2f} ms/patch (median {median:.2f})"
        )
    keras.mixed_precision.set_global_policy("float32")
    return {name: min(values) for name, values in times.items()}


def report_ordering(results, base_filters):
    """Print our ordering next to Long 2020's and whether the fast/slow split agrees."""
    paper = {name: MODELS[name][2][base_filters] for name in MODELS}
    ours = sorted(results, key=results.get)
    long = sorted(MODELS, key=paper.get)
    print(f"  ours (fastest first):      {' < '.join(ours)}")
    print(f"  Long 2020 (GTX 1080 Ti):   {' < '.join(long)}  ({', '.join(f'{paper[n]} ms' for n in long)})")
    agrees = max(results[name] for name in FAST) < min(results[name] for name in SLOW)
    print(f"  U-Net, U-Net+ T.C. faster than U-Net+ U.S., UNet++ (as Long 2020): {'yes' if agrees else 'no'}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--base-filters", type=int, nargs="+", default=[16], choices=[8, 16])
    args = parser.parse_args()
    gpus = tf.config.list_physical_devices("GPU")
    print(f"{describe()} | GPUs: {len(gpus)}")
    print(f"tensorflow {tf.__version__}, keras {keras.__version__}")
    policies = ["float32"] + (["mixed_float16"] if gpus else [])
    for base_filters in args.base_filters:
        print(f"inference: {args.size}x{args.size}x3 patches, batch {args.batch}, B={base_filters}, N=5")
        for policy in policies:
            print(f"{policy}:")
            report_ordering(run(policy, args, base_filters), base_filters)
    if not gpus:
        print("mixed_float16: skipped (no GPU)")


if __name__ == "__main__":
    main()
