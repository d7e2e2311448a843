"""Time ``evaluate_instances`` on a 1000 x 1000 image with ~700 nuclei against the slow reference.

Run as ``python benchmarks/bench_metrics.py``. Single-threaded; the synthetic image pair and the
reference come from tests/metrics_reference.py.
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from machine import describe  # noqa: E402
from metrics_reference import random_pair, reference_metrics  # noqa: E402
from nuclei_tf.metrics import evaluate_instances  # noqa: E402

RUNS = 10
TARGET_MS = 100.0


def seconds(fn):
    """Wall time of one call of ``fn``."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main():
    gt, pred = random_pair(np.random.default_rng(0), (1000, 1000), 700)
    result = evaluate_instances(gt, pred)
    fast_ms = 1e3 * min(seconds(lambda: evaluate_instances(gt, pred)) for _ in range(RUNS))
    slow_ms = 1e3 * seconds(lambda: reference_metrics(gt, pred))
    print(describe(threads=1))
    print(f"image 1000x1000: {result['n_gt']} ground-truth nuclei, {result['n_pred']} predicted")
    print(f"evaluate_instances (best of {RUNS}): {fast_ms:.1f} ms (target < {TARGET_MS:.0f} ms)")
    print(f"reference (once):                 {slow_ms:.1f} ms")
    print(f"speed-up: {slow_ms / fast_ms:.0f}x")
    print(f"aji {result['aji']:.4f}  aji_plus {result['aji_plus']:.4f}  pq {result['pq']:.4f}  map {result['map']:.4f}")


if __name__ == "__main__":
    main()
