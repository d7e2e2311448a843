"""Small images: in-process latency, a fresh `predict` end to end, and a folder of mixed-size
tiles in one `predict`, for the code of a ``--before`` commit and of this tree, in one run.

    python benchmarks/bench_latency.py --image IMAGE.tif --before 6c2dd94 [--tiles 50] [--repeats 5]

Each side runs in its own processes with its own code (``--before``: a ``git worktree`` of that
commit put first on ``PYTHONPATH``) and its own shipped model folder:

* ``in-process``: ``segment()`` of the 1000 x 1000 image, best of ``--repeats`` after a warm-up;
* ``fresh predict``: ``nuclei-tf predict IMAGE`` in a new process, wall time end to end, best of
  3, with the start-up before the first tile (process start to the first model call);
* ``tiles``: ``--tiles`` crops of 256-1200 px (random sizes and places, seed 0) from the image's
  folder's images, all in one ``predict`` (the files, or the folder where the side reads folders),
  against the sum of their warm in-process ``segment()`` + output times in one process;
* the top import costs of the modules ``predict`` imports before its first tile (``-X importtime``);
* ``nuclei-tf --help`` and ``nuclei-tf models --no-params``, each a fresh process, best of 3.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import describe  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

#: run inside each side's interpreter: warm in-process times (json on the last line)
IN_PROCESS = r"""
import json, sys, time, tempfile
from pathlib import Path
from nuclei_tf.data.io import read_image
from nuclei_tf.inference import load_bundle, segment
from nuclei_tf.inference.outputs import write_outputs
model, image_path, repeats, tiles = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
bundle = load_bundle(model)
image = read_image(image_path)
segment(bundle, image)
best = min((lambda t: (segment(bundle, image), time.perf_counter() - t)[1])(time.perf_counter()) for _ in range(repeats))
out = Path(tempfile.mkdtemp())
for path in tiles[:2]:
    write_outputs(read_image(path), segment(bundle, read_image(path))[1], out, "warm")
total = 0.0
for path in tiles:
    start = time.perf_counter()
    pixels = read_image(path)
    write_outputs(pixels, segment(bundle, pixels)[1], out, Path(path).stem)
    total += time.perf_counter() - start
print(json.dumps({"in_process_s": best, "tiles_in_process_s": total}))
"""

#: the CLI with a timer on the first model call (start-up = process start to that call)
FIRST_TILE = r"""
import sys, time
started = float(sys.argv[1])
import nuclei_tf.inference.bundle as bundle
original = bundle.ModelBundle.probabilities
def timed(self, tiles):
    if not getattr(timed, "done", False):
        timed.done = True
        print(f"FIRST_TILE {time.time() - started:.3f}", file=sys.stderr, flush=True)
    return original(self, tiles)
bundle.ModelBundle.probabilities = timed
import nuclei_tf.cli.main as entry
sys.argv = ["nuclei-tf"] + sys.argv[2:]
getattr(entry, "main", entry.cli)()  # the console entry point of that side's code
"""

IMPORTS = ("import nuclei_tf.cli.main, nuclei_tf.cli.predict, nuclei_tf.inference, nuclei_tf.inference.predict, "
           "nuclei_tf.inference.outputs, nuclei_tf.data.slide")


#: first in every child: import nuclei_tf from ``root`` (an editable install's finder would
#: otherwise hand back this tree's package whatever sys.path says)
PRELUDE = ("import sys; sys.path.insert(0, {root!r}); "
           "sys.meta_path[:] = [f for f in sys.meta_path if not type(f).__module__.startswith('__editable__')]\n")


def run(root, args):
    """``python [-X importtime] -c CODE ARGS...`` with nuclei_tf imported from ``root``."""
    at = args.index("-c") + 1
    args = [*args[:at], PRELUDE.format(root=str(root)) + args[at], *args[at + 1:]]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{root}: {' '.join(args[:at])} failed:\n{result.stderr[-3000:]}")
    return result


def make_tiles(image_dir, count, folder):
    """``count`` crops of 256-1200 px from the images in ``image_dir`` (seed 0)."""
    from PIL import Image

    sources = sorted(p for p in Path(image_dir).iterdir() if p.suffix.lower() in (".tif", ".png"))
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        with Image.open(sources[i % len(sources)]) as im:
            pixels = np.asarray(im.convert("RGB"))
        h, w = (int(rng.integers(256, min(1200, s) + 1)) for s in pixels.shape[:2])
        top, left = int(rng.integers(0, pixels.shape[0] - h + 1)), int(rng.integers(0, pixels.shape[1] - w + 1))
        paths.append(folder / f"tile{i:02d}.png")
        Image.fromarray(pixels[top : top + h, left : left + w]).save(paths[-1])
    return paths


def fresh_predict(root, model, inputs, out):
    """``(wall seconds, start-up seconds to the first tile)`` of one `predict` process."""
    shutil.rmtree(out, ignore_errors=True)
    start = time.time()
    result = run(root, ["-c", FIRST_TILE, repr(start), "predict", *map(str, inputs), "--model", str(model), "--out", str(out)])
    wall = time.time() - start
    first = float(re.search(r"FIRST_TILE ([0-9.]+)", result.stderr).group(1))  # progress bars share the line
    return wall, first


def import_costs(root, top=6):
    """``(total, [(seconds, package), ...])``: the import time of what predict imports before its
    first tile (its outermost imports), and the ``top`` top-level packages by cumulative time
    wherever they were first imported (``-X importtime``)."""
    result = run(root, ["-X", "importtime", "-c", IMPORTS])
    total, packages = 0.0, {}
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            _, cumulative, name = line[len("import time:"):].split("|")
            if not cumulative.strip().isdigit():
                continue
            seconds = int(cumulative) / 1e6
            total += seconds if not name[1:].startswith(" ") else 0.0  # outermost imports only
            if "." not in name.strip():
                packages[name.strip()] = max(seconds, packages.get(name.strip(), 0.0))
    return total, sorted(((s, n) for n, s in packages.items()), reverse=True)[:top]


#: the CLI as the console script runs it
CLI = "import sys\nfrom nuclei_tf.cli.main import main\nsys.argv = ['nuclei-tf', *sys.argv[1:]]\nmain()\n"


def cli_seconds(root, *args):
    """Best of 3 wall seconds of a fresh ``nuclei-tf ARGS`` process."""
    walls = []
    for _ in range(3):
        start = time.time()
        run(root, ["-c", CLI, *args])
        walls.append(time.time() - start)
    return min(walls)


def measure(label, root, model, image, tiles, tile_dir, repeats, reads_folders):
    timings = json.loads(run(root, ["-c", IN_PROCESS, str(model), str(image), str(repeats), *map(str, tiles)]).stdout.splitlines()[-1])
    walls = [fresh_predict(root, model, [image], Path(tempfile.mkdtemp()) / "one") for _ in range(3)]
    wall, first = min(walls)
    tiles_wall, tiles_first = fresh_predict(root, model, [tile_dir] if reads_folders else tiles, Path(tempfile.mkdtemp()) / "tiles")
    imports, top = import_costs(root)
    per_tile = timings["tiles_in_process_s"] / len(tiles)
    lines = [f"{label:>6}: in-process 1000 x 1000 {timings['in_process_s']:.2f} s (best of {repeats}) | fresh predict "
             f"{wall:.2f} s end to end, {first:.2f} s to the first tile | {len(tiles)} tiles in one predict {tiles_wall:.1f} s "
             f"({tiles_wall / len(tiles):.3f} s/tile; {(tiles_wall - tiles_first) / len(tiles):.3f} s/tile after start-up) "
             f"against {per_tile:.3f} s/tile in process: {(tiles_wall - tiles_first) / len(tiles) / per_tile:.2f}x",
             f"        imports before the first tile: {imports:.2f} s; top: "
             + ", ".join(f"{name} {seconds:.2f}" for seconds, name in top),
             f"        `nuclei-tf --help` {cli_seconds(root, '--help'):.2f} s, `nuclei-tf models --no-params` "
             f"{cli_seconds(root, 'models', '--no-params'):.2f} s (fresh processes, best of 3)"]
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", required=True, type=Path, help="a 1000 x 1000 H&E image (e.g. a MoNuSeg test image)")
    parser.add_argument("--before", required=True, help="the commit to compare with (e.g. today's main)")
    parser.add_argument("--tiles", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, help="also write the report here")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-latency-"))
    before = work / "before"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(before), args.before], check=True,
                   capture_output=True)
    try:
        tiles = make_tiles(args.image.parent, args.tiles, work / "tiles")
        report = [describe(), f"before: {args.before}; after: this tree ({subprocess.run(['git', '-C', str(REPO), 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True).stdout.strip()})"]
        report += measure("before", before, before / "weights" / "unet_plus_b16", args.image, tiles, work / "tiles", args.repeats, False)
        report += measure("after", REPO, REPO / "weights" / "unet_plus_b16", args.image, tiles, work / "tiles", args.repeats, True)
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(before)], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    print("\n".join(report))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(report) + "\n")


if __name__ == "__main__":
    main()
