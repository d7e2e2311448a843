"""Our numpy Macenko against staintools' Macenko on real images: speed and agreement.

Run as ``python benchmarks/bench_stain.py [--images N] [--timed T] [--repeats R]``. Single-threaded (BLAS,
OpenMP for spams, OpenCV). Both normalisers are fitted to the same MoNuSeg reference; then,
side by side on the same 1000 x 1000 MoNuSeg images, ``transform`` is timed (best of R per
image), and on N MoNuSeg and N TNBC images the outputs are compared: mean and largest absolute
difference in RGB levels, and the cosine similarity of the stain matrices each estimates.
Data: ../shared/data, or the folder named by NUCLEI_TF_DATA.
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import staintools  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = Path(os.environ.get("NUCLEI_TF_DATA", ROOT.parent / "shared" / "data"))
REFERENCE = "TCGA-A7-A13E-01Z-00-DX1"  # breast, MoNuSeg training set

from machine import describe  # noqa: E402
from nuclei_tf.data import TNBC, MoNuSeg  # noqa: E402
from nuclei_tf.preprocess.macenko import STAINTOOLS, MacenkoNormalizer, macenko_stains  # noqa: E402


def best_seconds(fn, repeats):
    """Least wall time of ``repeats`` calls of ``fn``."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def agreement(ours, theirs, images):
    """Per image: mean |difference| (RGB levels), max |difference|, 1 - min cosine of the stain rows."""
    rows = []
    for image in images:
        diff = np.abs(ours.transform(image).astype(int) - theirs.transform(image.copy()))
        stains = staintools.MacenkoStainExtractor.get_stain_matrix(image.copy())
        cosine = np.sum(macenko_stains(image, convention=STAINTOOLS) * stains, axis=1)
        rows.append((diff.mean(), diff.max(), 1.0 - cosine.min()))
    return np.array(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10, help="images per dataset for the agreement (0: all)")
    parser.add_argument("--timed", type=int, default=5, help="MoNuSeg images timed")
    parser.add_argument("--repeats", type=int, default=3, help="timings per image (best kept)")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    warnings.simplefilter("ignore")  # staintools' and scikit-image's deprecation warnings

    monuseg = {r.id: r for r in MoNuSeg(DATA / "MoNuSeg").records()}
    reference = monuseg.pop(REFERENCE).load_image()
    ours = MacenkoNormalizer(convention="staintools").fit(reference)
    theirs = staintools.StainNormalizer("macenko")  # as is; it writes into its input, hence the copies
    theirs.fit(reference.copy())
    print(describe(threads=1))
    print(f"numpy {np.__version__}, opencv {cv2.__version__}, python {platform.python_version()}")

    timed = [r.load_image() for r in list(monuseg.values())[: args.timed]]
    theirs_s = [best_seconds(lambda: theirs.transform(image.copy()), args.repeats) for image in timed]
    ours_s = [best_seconds(lambda: ours.transform(image), args.repeats) for image in timed]
    print(f"transform of {len(timed)} MoNuSeg images {timed[0].shape[:2]}, best of {args.repeats} each")
    print(f"  staintools Macenko: {1e3 * np.mean(theirs_s):7.1f} ms/image")
    print(f"  numpy Macenko:      {1e3 * np.mean(ours_s):7.1f} ms/image")
    print(f"  speed-up: {sum(theirs_s) / sum(ours_s):.1f}x")

    limit = args.images or None
    sets = {
        "MoNuSeg": [r.load_image() for r in list(monuseg.values())[:limit]],
        "TNBC": [r.load_image() for r in TNBC(DATA / "TNBC").records()[:limit]],
    }
    print(f"agreement with staintools, both fitted to {REFERENCE}: |diff| in RGB levels, stain matrices' cosine")
    for name, images in sets.items():
        rows = agreement(ours, theirs, images)
        print(
            f"  {name:8s} {len(images):3d} images: mean |diff| {rows[:, 0].mean():.4f} "
            f"(worst image {rows[:, 0].max():.4f}), "
            f"max |diff| {rows[:, 1].max():.0f}, 1 - cosine <= {rows[:, 2].max():.1e}"
        )


if __name__ == "__main__":
    main()
