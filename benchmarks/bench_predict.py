"""Whole-slide prediction: time and peak memory of `nuclei-tf predict` on a SIZE x SIZE image
(the shipped sample tiled), measured on the real command in a child process (peak RSS of
that process, TensorFlow included), beside the full-array path in the same run: segment()
(whole probability and label maps) + write_outputs() of the full instance map.

    python benchmarks/bench_predict.py [--size 10000] [--batch-size 8] [--model DIR] [--paths streamed,full-array]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from machine import describe  # noqa: E402


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


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=10000)
    parser.add_argument("--batch-size", type=int, default=8, help="tiles per model call")
    parser.add_argument("--model", default=None, help="model folder (default: the shipped model)")
    parser.add_argument("--paths", default="streamed,full-array", help="which paths to measure, comma-separated")
    parser.add_argument("--full-array-child", nargs=2, metavar=("SLIDE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.full_array_child:
        return full_array(*args.full_array_child, args.model, args.batch_size)
    print(describe())
    model = ["--model", args.model] if args.model else []
    with tempfile.TemporaryDirectory() as tmp:
        slide = Path(tmp) / "slide.tif"
        make_slide(args.size, slide)
        commands = {
            "streamed": [sys.executable, "-m", "nuclei_tf", "predict", str(slide), "--out", f"{tmp}/streamed",
                         "--batch-size", str(args.batch_size), *model],
            "full-array": [sys.executable, __file__, "--full-array-child", str(slide), f"{tmp}/full",
                           "--batch-size", str(args.batch_size), *model],
        }
        print(f"image {args.size} x {args.size} ({3 * args.size**2 / 2**30:.2f} GiB RGB), batch {args.batch_size}")
        for name in args.paths.split(","):
            seconds, peak, output = run_child(commands[name])
            print(f"{name:>10}: {seconds:6.0f} s | peak RSS {peak:.2f} GiB | {output.splitlines()[-1]}")


if __name__ == "__main__":
    main()
