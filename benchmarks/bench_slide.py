"""Whole-slide prediction on a synthetic 40x pyramidal slide: peak RSS and wall time of the whole
`nuclei-tf predict` process (bar: < 2 GB), tiles skipped by tissue detection, against predicting
the same pixels as a flat image (every tile, the image in memory), in the same run.

The slide (SIZE x SIZE at 0.25 um/px, JPEG tiles, a level every 2x down to ~1,000 px) is about
30% tissue: a few overlapping ellipses filled with real H&E (MoNuSeg training images tiled
side by side), white glass elsewhere; it is generated tile by tile, never in memory.

    python benchmarks/bench_slide.py --monuseg ../shared/data/MoNuSeg [--size 40000] [--flat-size 12000]
        [--model DIR] [--paths slide,flat]

``--flat-size`` (default SIZE) sets the flat comparison's own size: a 40,000 px flat image is
4.5 GiB of RGB before any prediction, and predicting every one of its tiles takes hours on a
laptop CPU; the slide path is then also measured at that size, side by side.
"""
import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import tifffile

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_predict import run_child  # noqa: E402
from machine import describe  # noqa: E402

TILE = 256
MPP = 0.25
#: (centre x, centre y, semi-axis x, semi-axis y) of the tissue ellipses, as fractions of the side
ELLIPSES = ((0.35, 0.4, 0.22, 0.3), (0.65, 0.6, 0.2, 0.18), (0.55, 0.3, 0.1, 0.12))


class SyntheticSlide:
    """Level-0 pixels of the synthetic slide, computed for any box (strided for lower levels)."""

    def __init__(self, size, monuseg):
        from nuclei_tf.data import MoNuSeg
        from nuclei_tf.data.io import read_image

        self.textures = [read_image(r.image_path) for r in MoNuSeg(monuseg).train()[:12]]
        self.size = size

    def tissue(self, xs, ys):
        inside = np.zeros((len(ys), len(xs)), bool)
        for cx, cy, ax, ay in ELLIPSES:
            inside |= (((xs[None, :] / self.size - cx) / ax) ** 2 + ((ys[:, None] / self.size - cy) / ay) ** 2) <= 1
        return inside

    def pixels(self, x, y, width, height, step=1):
        xs = np.arange(x, x + width * step, step)[:width]
        ys = np.arange(y, y + height * step, step)[:height]
        out = np.full((height, width, 3), 244, np.uint8)  # glass
        inside = self.tissue(xs, ys) & (xs[None, :] < self.size) & (ys[:, None] < self.size)
        if inside.any():
            side = self.textures[0].shape[0]
            index = (ys[:, None] // side * 7 + xs[None, :] // side) % len(self.textures)
            for k, texture in enumerate(self.textures):
                where = inside & (index == k)
                if where.any():
                    rows, cols = np.nonzero(where)
                    out[rows, cols] = texture[ys[rows] % side, xs[cols] % side]
        return out

    def tissue_fraction(self):
        grid = np.linspace(0, self.size, 400, endpoint=False)
        return float(self.tissue(grid, grid).mean())


def write_slide(synthetic, path):
    """A generic tiled pyramidal TIFF (OpenSlide 'generic-tiff'), levels as reduced pages."""
    levels = []
    side = synthetic.size
    while True:
        levels.append(side)
        if side <= 1000:
            break
        side = -(-side // 2)
    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        for k, side in enumerate(levels):
            step = 2**k

            def tiles(side=side, step=step):
                for r in range(0, side, TILE):
                    for c in range(0, side, TILE):
                        yield synthetic.pixels(c * step, r * step, TILE, TILE, step)

            tif.write(tiles(), shape=(side, side, 3), dtype=np.uint8, tile=(TILE, TILE), compression="jpeg", compressionargs={"level": 90},
                      photometric="rgb", resolution=(1e4 / (MPP * step),) * 2, resolutionunit="CENTIMETER",
                      subfiletype=1 if k else 0)


def write_flat(synthetic, path):
    """The same level-0 pixels as a flat (strip) TIFF: a plain image, read whole."""
    def strips():
        for r in range(0, synthetic.size, TILE):
            yield synthetic.pixels(0, r, synthetic.size, min(TILE, synthetic.size - r))

    tifffile.imwrite(path, strips(), shape=(synthetic.size, synthetic.size, 3), dtype=np.uint8, rowsperstrip=TILE,
                     photometric="rgb", bigtiff=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--monuseg", required=True, help="MoNuSeg root (the H&E textures)")
    parser.add_argument("--size", type=int, default=40000)
    parser.add_argument("--flat-size", type=int, help="size of the flat-image comparison (default: --size)")
    parser.add_argument("--model", help="model folder (default: the shipped model)")
    parser.add_argument("--paths", default="slide,flat", help="slide, flat or both")
    parser.add_argument("--workdir", help="folder for the generated files (default: a temporary one)")
    args = parser.parse_args()
    print(describe())
    model = ["--model", args.model] if args.model else []
    paths = args.paths.split(",")
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        sizes = [args.size] if "slide" in paths else []
        flat_size = args.flat_size or args.size
        if "flat" in paths and flat_size not in sizes:
            sizes.append(flat_size)
        for size in sizes:
            synthetic = SyntheticSlide(size, args.monuseg)
            slide = Path(tmp) / f"slide{size}.tif"
            write_slide(synthetic, slide)
            print(f"\nslide {size} x {size} px at {MPP} um/px ({3 * size**2 / 2**30:.2f} GiB RGB), "
                  f"{100 * synthetic.tissue_fraction():.0f}% tissue, {slide.stat().st_size / 2**20:.0f} MiB JPEG pyramid")
            if "slide" in paths:
                command = [sys.executable, "-m", "nuclei_tf", "predict", str(slide), "--out", f"{tmp}/slide{size}", *model]
                seconds, peak, output = run_child(command)
                kept = next((line for line in output.splitlines() if line.startswith("tissue:")), "")
                print(f"  slide path: {seconds:6.0f} s | peak RSS {peak:.2f} GiB | {kept} | {output.splitlines()[-1]}")
            if "flat" in paths and size == flat_size:
                flat = Path(tmp) / f"flat{size}.tif"
                write_flat(synthetic, flat)
                command = [sys.executable, "-m", "nuclei_tf", "predict", str(flat), "--out", f"{tmp}/flat{size}", *model]
                seconds, peak, output = run_child(command)
                print(f"  flat image: {seconds:6.0f} s | peak RSS {peak:.2f} GiB | every tile | {output.splitlines()[-1]}")


if __name__ == "__main__":
    main()
