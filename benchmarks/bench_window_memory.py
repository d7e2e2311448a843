"""Peak memory of post-processing one whole-slide window (:func:`nuclei_tf.postprocess.strips._window`:
fill holes, 8-connected clusters, watershed split, size filter, renumbering) against the obvious
numpy implementation of the same steps, side by side, each in its own process.

A window spans the slide's width and cannot close while a nucleus cluster crosses its lower
edge, so on dense tissue it grows to hundreds of rows (the 40,000 px benchmark slide's windows:
median 309, largest 633 rows). The obvious way keeps a second label map and lets numpy make
int64 copies (``np.bincount``, ``lookup[labels]``, ``small[labels]``): 8 bytes a pixel each.

The band is cut from the label pyramid a slide run wrote (``<stem>.labels.tif``, e.g. from
``bench_slide.py --workdir``); its foreground stands in for the thresholded probability.

    python benchmarks/bench_window_memory.py --labels DIR/slide40000.labels.tif --top 20423 --rows 633 [--heights]

``--heights`` also streams the whole label map through
:func:`~nuclei_tf.postprocess.strips.instance_strips` and reports the rows of its windows.
"""
import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import tifffile
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from machine import describe  # noqa: E402

SETTINGS = {"threshold": 0.5, "min_size": 10, "fill": True, "split": "watershed", "h": 1.0}


def read_band(tif, top, rows):
    """Rows ``top .. top + rows`` of level 0 of an open tiled label TIFF, decoded tile by tile."""
    page = tif.pages[0]
    height, width = page.shape[:2]
    tile_h, tile_w = page.tilelength, page.tilewidth
    across = -(-width // tile_w)
    stop = min(top + rows, height)
    band = np.zeros((stop - top, width), np.int32)
    for tile_row in range(top // tile_h, -(-stop // tile_h)):
        for tile_col in range(across):
            index = tile_row * across + tile_col
            tif.filehandle.seek(page.dataoffsets[index])
            tile = page.decode(tif.filehandle.read(page.databytecounts[index]), index)[0].reshape(tile_h, tile_w)
            r0, c0 = tile_row * tile_h, tile_col * tile_w
            a, b = max(r0, top), min(r0 + tile_h, stop)
            band[a - top : b - top, c0 : min(c0 + tile_w, width)] = tile[a - r0 : b - r0, : min(tile_w, width - c0)]
    return band


def obvious_window(mask, settings):
    """The same steps with a second label map and numpy's full-size index copies."""
    from nuclei_tf.postprocess.watershed import CROP_MARGIN, _split_component

    filled = ndimage.binary_fill_holes(mask)
    clusters = ndimage.label(filled, structure=np.ones((3, 3)))[0].astype(np.int32)
    owned = np.ones(int(clusters.max()) + 1, bool)
    owned[0] = False
    components = ndimage.label(owned[clusters])[0].astype(np.int32)
    out, next_id = np.zeros(components.shape, np.int32), 1
    for label, box in enumerate(ndimage.find_objects(components), start=1):
        crop = tuple(slice(max(s.start - CROP_MARGIN, 0), s.stop + CROP_MARGIN) for s in box)
        pieces = _split_component(components[crop] == label, settings.h, 1.0)
        out[crop][pieces > 0] = pieces[pieces > 0] + next_id - 1
        next_id += int(pieces.max())
    small = np.bincount(out.ravel()) < settings.min_size
    small[0] = False
    out[small[out]] = 0
    present = np.bincount(out.ravel()) > 0
    present[0] = False
    return (np.cumsum(present) * present).astype(np.int32)[out]


def resident_mib():
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def window_heights(path, block=384):
    """Rows of every window :func:`instance_strips` post-processes while the foreground of the
    label map at ``path`` arrives in blocks of ``block`` rows (the margin tiling's cores)."""
    from nuclei_tf.postprocess import strips
    from nuclei_tf.postprocess.instances import PostProcess

    heights, window = [], strips._window

    def recorded(mask, *args):
        heights.append(len(mask))
        return window(mask, *args)

    strips._window = recorded
    with tifffile.TiffFile(path) as tif:
        height, width = tif.pages[0].shape[:2]
        blocks = ((top, read_band(tif, top, block) > 0) for top in range(0, height, block))
        for _ in strips.instance_strips(blocks, height, PostProcess(**SETTINGS), strips.strip_rows_for(width)):
            pass
    return width, strips.strip_rows_for(width), np.array(heights)


def child(path, top, rows, variant):
    """Peak RSS above the loaded band (sampled every 2 ms), in MiB, of one variant; prints JSON."""
    from nuclei_tf.cli.allocator import tune_allocator
    from nuclei_tf.postprocess.instances import PostProcess
    from nuclei_tf.postprocess.strips import _window

    tune_allocator()  # as `nuclei-tf predict` runs
    with tifffile.TiffFile(path) as tif:
        mask = read_band(tif, top, rows) > 0
    settings = PostProcess(**SETTINGS)
    before, peak, running = resident_mib(), [0.0], [True]

    def sample():
        while running[0]:
            peak[0] = max(peak[0], resident_mib())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample)
    sampler.start()
    labels = _window(mask, 0, 0, len(mask), settings)[1] if variant == "ours" else obvious_window(mask, settings)
    running[0] = False
    sampler.join()
    print(json.dumps({"peak_mib": peak[0] - before, "pixels": mask.size, "nuclei": int(labels.max()),
                      "checksum": int(labels.astype(np.int64).sum())}))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--labels", required=True, help="a <stem>.labels.tif written by `nuclei-tf predict`")
    parser.add_argument("--top", type=int, default=20423, help="first row of the band (level 0)")
    parser.add_argument("--rows", type=int, default=633, help="rows of the band")
    parser.add_argument("--heights", action="store_true", help="also report the rows of every window of the map")
    parser.add_argument("--child", choices=["ours", "obvious"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.labels, args.top, args.rows, args.child)
    print(describe())
    results = {}
    for variant in ("ours", "obvious"):
        command = [sys.executable, __file__, "--labels", args.labels, "--top", str(args.top), "--rows", str(args.rows),
                   "--child", variant]
        results[variant] = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
    ours, obvious = results["ours"], results["obvious"]
    if (ours["nuclei"], ours["checksum"]) != (obvious["nuclei"], obvious["checksum"]):
        raise SystemExit(f"the two variants disagree: {ours} vs {obvious}")
    pixels = ours["pixels"]
    print(f"window: rows {args.top}..{args.top + args.rows} of {Path(args.labels).name}, {pixels / 1e6:.1f} Mpx, "
          f"{ours['nuclei']} nuclei (same labels both ways)")
    for name, result in (("strips._window", ours), ("obvious numpy", obvious)):
        print(f"  {name:15s} peak {result['peak_mib']:6.0f} MiB above the band ({result['peak_mib'] * 2**20 / pixels:.1f} bytes a pixel)")
    print(f"  ratio: {obvious['peak_mib'] / ours['peak_mib']:.2f}x")
    if args.heights:
        width, strip_rows, heights = window_heights(args.labels)
        print(f"windows of the whole map ({width} px wide, a window every {strip_rows} new rows): {len(heights)}, "
              f"rows median {np.median(heights):.0f}, 90th percentile {np.percentile(heights, 90):.0f}, largest {heights.max()}")


if __name__ == "__main__":
    main()
