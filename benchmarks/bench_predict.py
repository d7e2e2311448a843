"""`nuclei-tf predict` on a flat SIZE x SIZE image (the shipped sample tiled): where the time goes,
for the model folder's own tiling against today's 256 px / 50%-overlap blend, in one run.

Each case runs the real `run_prediction` in a child process (peak RSS of that process,
TensorFlow included) with timers around the model call, the strip post-processing windows
and the output writers, and reports: seconds end to end and megapixels per second; start-up
(interpreter, imports, model loading); model (every `ModelBundle.probabilities` call,
tf.function tracing included); post-processing (`instance_strips` windows: threshold, holes,
watershed); writing (labels TIFF, CSV, GeoJSON, overlay PNG); the rest (reading the image,
stain normalisation, tiling and stitching); and model megapixels per input megapixel.

The physical limit beside it: the model's GFLOP per megapixel (counted by TensorFlow's
profiler on a 256 px tile) over the CPU's measured float32 matmul GFLOP/s.

    python benchmarks/bench_predict.py [--sizes 10000,1000] [--precisions bfloat16,float32] [--model DIR]
        [--batch-size 8] [--full-array]

Cases per size: the folder's tiling at each of ``--precisions`` (bfloat16 is the default on
CPUs with AVX512-BF16/AMX), then ``blend256`` (today's tiling before the margin scheme) at float32.

``--full-array`` adds the path without streaming (whole probability and label maps in memory).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from machine import describe  # noqa: E402

#: today's tiling before the margin scheme: Lagree's 256 px tiles at 50% overlap, blended
BLEND256 = {"tile": 256, "overlap": 0.5, "blend": "smooth", "margin": 0}


def make_slide(size, path):
    from nuclei_tf.cli.predict import SAMPLE
    from nuclei_tf.data.io import read_image

    sample = read_image(SAMPLE)
    reps = -(-size // sample.shape[0])
    # a flat (strip) TIFF: a plain image, not a tiled slide (see bench_slide.py for those)
    tifffile.imwrite(path, np.tile(sample, (reps, reps, 1))[:size, :size], rowsperstrip=512, compression="zlib")


def full_array(slide, out, model, batch_size):
    """The path without streaming: full probability and label maps in memory, then the files."""
    from nuclei_tf.data.io import read_image
    from nuclei_tf.inference import load_bundle, segment
    from nuclei_tf.inference.outputs import write_outputs

    image = read_image(slide)
    _, instances = segment(load_bundle(model), image, batch_size=batch_size)
    write_outputs(image, instances, Path(out), Path(slide).stem)
    print(f"{slide}: {int(instances.max())} nuclei")


class Timer:
    """Seconds accumulated per name by wrapped functions."""

    def __init__(self):
        self.seconds, self.model_pixels = {}, 0

    def wrap(self, function, name):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
        return timed

    def iterator(self, items, name):
        """``items`` with the time spent producing each one accumulated under ``name``."""
        items = iter(items)
        while True:
            start = time.perf_counter()
            try:
                item = next(items)
            except StopIteration:
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
                return
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
            yield item


def breakdown(slide, out, model, batch_size, precision):
    """Child: the real prediction with timers; prints one JSON line."""
    begin = time.perf_counter()
    from nuclei_tf import inference
    from nuclei_tf.cli.predict import run_prediction
    from nuclei_tf.inference import outputs
    from nuclei_tf.inference.bundle import ModelBundle
    from nuclei_tf.postprocess import strips

    timer = Timer()
    timer.seconds["imports"] = time.perf_counter() - begin
    probabilities = ModelBundle.probabilities

    def counted(bundle, tiles):
        timer.model_pixels += tiles.shape[0] * tiles.shape[1] * tiles.shape[2]
        return probabilities(bundle, tiles)

    ModelBundle.probabilities = timer.wrap(counted, "model")
    strips._window = timer.wrap(strips._window, "post-processing")
    inference.load_bundle = timer.wrap(inference.load_bundle, "load")
    write = outputs.write_segmentation
    outputs.write_segmentation = timer.wrap(lambda image, s, *a: write(image, timer.iterator(s, "upstream"), *a), "write")
    run_prediction([slide], out, model, batch_size, precision=precision)
    timer.seconds["in_process"] = time.perf_counter() - begin
    print(json.dumps({"seconds": timer.seconds, "model_pixels": timer.model_pixels}))


def run_child(command):
    """(seconds, peak RSS in GiB, stdout) of a child process."""
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    output = child.stdout.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{output}")
    return seconds, usage.ru_maxrss / 2**20, output.strip()


def scheme_folder(model, scheme, tmp):
    """The model folder to run: as shipped (``model``) or with today's 256 px blend tiling."""
    from nuclei_tf.inference.shipped import resolve_model

    folder = resolve_model(model)
    if scheme == "model":
        return folder
    copy = Path(tmp) / "blend256"
    if not copy.exists():
        shutil.copytree(folder, copy)
        config = json.loads((copy / "config.json").read_text())
        (copy / "config.json").write_text(json.dumps({**config, **BLEND256}, indent=2))
    return copy


def model_gflop_per_mpx(model, tile=256):
    """Float operations of one ``tile`` px forward pass (TensorFlow's profiler), per megapixel."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    from nuclei_tf.inference import load_bundle

    network = load_bundle(model).model
    concrete = tf.function(lambda x: network(x, training=False)).get_concrete_function(tf.TensorSpec([1, tile, tile, 3]))
    graph = convert_variables_to_constants_v2(concrete).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    tf.get_logger().setLevel("ERROR")  # the v1 profiler announces its deprecation on every call
    flops = tf.compat.v1.profiler.profile(graph=graph, run_meta=tf.compat.v1.RunMetadata(), cmd="op", options=options)
    return flops.total_float_ops / 1e9 / (tile * tile / 1e6)


def matmul_gflops(n=4096, repeats=5):
    """Measured float32 GFLOP/s of a large ``tf.matmul`` (the practical peak of this CPU)."""
    import tensorflow as tf

    a = tf.random.uniform((n, n))
    multiply = tf.function(lambda x: tf.matmul(x, x))
    multiply(a).numpy()
    start = time.perf_counter()
    for _ in range(repeats):
        multiply(a).numpy()
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def report(scheme, size, wall, peak, result):
    """One line of the table: where the seconds of one case went."""
    seconds, mpx = result["seconds"], size * size / 1e6
    startup = wall - seconds["in_process"] + seconds["imports"] + seconds["load"]
    writing = seconds["write"] - seconds["upstream"]
    post = seconds.get("post-processing", 0.0)
    rest = wall - startup - seconds["model"] - post - writing
    print(f"{scheme:>17} {size:>6} | {wall:7.1f} s {mpx / wall:6.3f} Mpx/s | model px per input px "
          f"{result['model_pixels'] / 1e6 / mpx:4.2f} | start-up {startup:5.1f} s, model {seconds['model']:6.1f} s, "
          f"post-processing {post:5.1f} s, writing {writing:5.1f} s, reading+stain+stitching {rest:5.1f} s | "
          f"peak RSS {peak:.2f} GiB")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,1000", help="image sides, comma-separated")
    parser.add_argument("--precisions", default="bfloat16,float32", help="precisions of the folder's own tiling")
    parser.add_argument("--batch-size", type=int, default=8, help="tiles per model call (256 px tile equivalents)")
    parser.add_argument("--model", default=None, help="model folder or shipped name (default: the shipped model)")
    parser.add_argument("--precision", default="float32", help=argparse.SUPPRESS)
    parser.add_argument("--full-array", action="store_true", help="also run the non-streamed path")
    parser.add_argument("--no-blend", action="store_true", help="leave out the 256 px blend case")
    parser.add_argument("--breakdown-child", nargs=2, metavar=("SLIDE", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--full-array-child", nargs=2, metavar=("SLIDE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.breakdown_child:
        return breakdown(*args.breakdown_child, args.model, args.batch_size, args.precision)
    if args.full_array_child:
        return full_array(*args.full_array_child, args.model, args.batch_size)
    print(describe())
    gflop, peak_rate = model_gflop_per_mpx(args.model), matmul_gflops()
    print(f"model: {gflop:.1f} GFLOP per Mpx | tf.matmul float32: {peak_rate:.1f} GFLOP/s | "
          f"physical limit {peak_rate / gflop:.3f} Mpx/s at 1 model px per input px")
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            slide = Path(tmp) / f"image{size}.tif"
            make_slide(size, slide)
            cases = [("model", precision) for precision in args.precisions.split(",")] + [("blend256", "float32")] * (not args.no_blend)
            for scheme, precision in cases:
                folder = scheme_folder(args.model, scheme, tmp)
                command = [sys.executable, __file__, "--breakdown-child", str(slide), f"{tmp}/{scheme}{precision}{size}",
                           "--model", str(folder), "--batch-size", str(args.batch_size), "--precision", precision]
                wall, peak, output = run_child(command)
                name = f"{scheme}-{precision}"
                report(name, size, wall, peak, json.loads(output.splitlines()[-1]))
            if args.full_array:
                command = [sys.executable, __file__, "--full-array-child", str(slide), f"{tmp}/full{size}",
                           "--batch-size", str(args.batch_size), *(["--model", args.model] if args.model else [])]
                wall, peak, _ = run_child(command)
                print(f"full-array {size:>6} | {wall:7.1f} s | peak RSS {peak:.2f} GiB")


if __name__ == "__main__":
    main()
