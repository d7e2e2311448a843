"""Weight maps (Ronneberger eq. 2) on real 1000 x 1000 MoNuSeg images: ours vs the naive
per-nucleus full-image distance transforms, side by side in one run.

    python benchmarks/bench_weight_map.py [--data ../shared/data] [--images 3]
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).parent))
from machine import describe  # noqa: E402

from nuclei_tf.data import MoNuSeg  # noqa: E402
from nuclei_tf.preprocess.weight_map import class_balance, weight_map  # noqa: E402


def naive(instances, w0=10.0, sigma=5.0):
    distances = np.sort(np.stack([ndimage.distance_transform_edt(instances != i) for i in range(1, instances.max() + 1)]), axis=0)
    border = w0 * np.exp(-((distances[0] + distances[1]) ** 2) / (2 * sigma**2))
    return class_balance(instances) + np.where(instances == 0, border, 0.0)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--images", type=int, default=3)
    args = parser.parse_args()
    print(describe())
    records = MoNuSeg(Path(args.data) / "MoNuSeg").train()[: args.images]
    for record in records:
        instances = record.load_instances()
        ours = []
        for _ in range(3):
            start = time.perf_counter()
            fast = weight_map(instances)
            ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        slow = naive(instances)
        naive_s = time.perf_counter() - start
        print(f"{record.id}: {instances.max()} nuclei | ours {min(ours):.3f} s | naive {naive_s:.1f} s | "
              f"speed-up {naive_s / min(ours):.0f}x | max |diff| {np.abs(fast - slow).max():.2e}")


if __name__ == "__main__":
    main()
