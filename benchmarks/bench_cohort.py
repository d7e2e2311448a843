"""Cohorts of slides, in one run on this machine (issue 32): N slides of SIZE x SIZE px of real
H&E tissue (MoNuSeg training images tiled, a different arrangement per slide; tiled pyramidal
TIFF at 0.25 um/px) segmented with the shipped model as

(a) N separate ``nuclei-tf predict`` processes, one after the other,
(b) one ``nuclei-tf predict`` of the N slides,
(c) ``nuclei-tf cohort`` on its default LocalCluster (one 1-thread worker per core), and (c1) with
    ``--workers 1`` (one worker with every core, the configuration of (b)),
(d) ``nuclei-tf cohort --scheduler`` on an external ``dask scheduler`` with 1, then 2, workers
    of 1 core each (``taskset``).

Reported: wall time, slides per hour, start-up per slide ((a) - (b)) / N, the scheduling
overhead of (c1) against (b) (bar: <= 5%), peak RSS of each process (the cohort's workers
polled), and the hours for 1,100 TCGA slides at the measured per-slide time on 1, 8 and 64
workers. Nothing else may run meanwhile.

    python benchmarks/bench_cohort.py --monuseg ../shared/data/MoNuSeg [--slides 8] [--size 4000]
        [--out results/benchmarks/cohort_8x4000.txt]
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import tifffile

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from machine import describe  # noqa: E402

TCGA_BRCA_SLIDES = 1100
NUCLEI_TF = [sys.executable, "-m", "nuclei_tf"]


def make_slides(monuseg, count, size, folder):
    """``count`` pyramids of real H&E, each its own permutation of the training images."""
    from nuclei_tf.data import MoNuSeg
    from nuclei_tf.data.io import read_image

    textures = [read_image(r.image_path) for r in MoNuSeg(monuseg).train()[:16]]
    side = textures[0].shape[0]
    per_row = -(-size // side)
    paths = []
    for k in range(count):
        order = np.random.default_rng(k).permutation(per_row * per_row) % len(textures)
        canvas = np.empty((per_row * side, per_row * side, 3), np.uint8)
        for index, texture in enumerate(order):
            r, c = divmod(index, per_row)
            canvas[r * side : (r + 1) * side, c * side : (c + 1) * side] = textures[texture]
        level0 = np.ascontiguousarray(canvas[:size, :size])
        path = folder / f"slide{k}.tif"
        with tifffile.TiffWriter(path, bigtiff=False) as tif:
            for level in range(3):
                tif.write(level0[:: 2**level, :: 2**level], tile=(256, 256), compression="jpeg", photometric="rgb",
                          resolution=(4e4 / 2**level, 4e4 / 2**level), resolutionunit="CENTIMETER",
                          subfiletype=1 if level else 0)
        paths.append(path)
    return paths


class PeakRss:
    """Peak resident memory (GiB) of a process and each of its descendants, polled every 0.2 s."""

    def __init__(self, pid, names=None):
        self.root, self.names, self.peaks, self.done = psutil.Process(pid), names, {}, threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()

    def _poll(self):
        while not self.done.is_set():
            try:
                processes = [self.root, *self.root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            for process in processes:
                try:
                    command = process.cmdline()
                    label = "worker" if "multiprocessing" in " ".join(command) else " ".join(command[1:4])
                    self.peaks[process.pid] = max(self.peaks.get(process.pid, (0, label))[0],
                                                  process.memory_info().rss / 2**30), label
                except psutil.Error:
                    pass
            time.sleep(0.2)

    def stop(self):
        self.done.set()
        self.thread.join()
        return {pid: peak for pid, peak in self.peaks.items() if "resource_tracker" not in peak[1]}


def timed(command, env=None):
    """``(seconds, {pid: (peak GiB, command)})`` of a command and its descendants."""
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    rss = PeakRss(child.pid)
    output, _ = child.communicate()
    seconds = time.perf_counter() - start
    peaks = rss.stop()
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, command))} failed:\n{output[-3000:]}")
    return seconds, peaks


class ExternalCluster:
    """A ``dask scheduler`` and ``workers`` single-core workers (``taskset -c i``) on 127.0.0.1."""

    def __init__(self, workers, folder):
        from distributed import Client

        scheduler_file = folder / f"scheduler-{workers}.json"
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        self.logs = open(folder / f"dask-{workers}.log", "w")
        self.processes = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                            "--port", "0", "--no-dashboard", "--scheduler-file", str(scheduler_file)],
                                           stdout=self.logs, stderr=self.logs, env=env)]
        while not scheduler_file.is_file():
            time.sleep(0.1)
        self.address = json.loads(scheduler_file.read_text())["address"]
        for core in range(workers):
            self.processes.append(subprocess.Popen(
                ["taskset", "-c", str(core % os.cpu_count()), sys.executable, "-m", "distributed.cli.dask_worker",
                 self.address, "--nthreads", "1", "--no-nanny", "--host", "127.0.0.1", "--no-dashboard"],
                stdout=self.logs, stderr=self.logs, env=env))
        with Client(self.address, timeout="30s") as client:
            client.wait_for_workers(workers, timeout=120)
        self.rss = [PeakRss(p.pid) for p in self.processes[1:]]

    def close(self):
        peaks = {}
        for rss in self.rss:
            peaks.update(rss.stop())
        for process in reversed(self.processes):
            process.terminate()
            process.wait(timeout=30)
        self.logs.close()
        return peaks


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--monuseg", type=Path, required=True)
    parser.add_argument("--slides", type=int, default=8)
    parser.add_argument("--size", type=int, default=4000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    lines = [f"# bench_cohort: {args.slides} slides of {args.size} x {args.size} px of H&E at 0.25 um/px, shipped model",
             describe(), ""]

    def say(line):
        print(line, flush=True)
        lines.append(line)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        slides = make_slides(args.monuseg, args.slides, args.size, tmp)
        results = {}
        start = time.perf_counter()
        peaks = {}
        for k, slide in enumerate(slides):
            _, peak = timed([*NUCLEI_TF, "predict", str(slide), "--out", str(tmp / "a")])
            peaks.update(peak)
        results["(a) separate predict processes"] = (time.perf_counter() - start, peaks)
        results["(b) one predict of all slides"] = timed([*NUCLEI_TF, "predict", *map(str, slides), "--out", str(tmp / "b")])
        results["(c) cohort, default LocalCluster"] = timed([*NUCLEI_TF, "cohort", *map(str, slides), "--out", str(tmp / "c")])
        results["(c1) cohort, LocalCluster --workers 1 (b's configuration)"] = timed(
            [*NUCLEI_TF, "cohort", *map(str, slides), "--out", str(tmp / "c1"), "--workers", "1"])
        per_slide = {}
        for workers in (1, 2):
            cluster = ExternalCluster(workers, tmp)
            try:
                name = f"(d) cohort, external scheduler, {workers} x 1-core worker{'s' if workers > 1 else ''}"
                seconds, client_peak = timed([*NUCLEI_TF, "cohort", *map(str, slides), "--out", str(tmp / f"d{workers}"),
                                              "--scheduler", cluster.address])
            finally:
                worker_peaks = cluster.close()
            results[name] = (seconds, {**client_peak, **worker_peaks})
            with open(tmp / f"d{workers}" / "cohort.csv") as handle:
                per_slide[workers] = float(np.median([float(r["seconds"]) for r in csv.DictReader(handle)]))
        with open(tmp / "c" / "cohort.csv") as handle:
            rows = list(csv.DictReader(handle))
        per_slide["local"] = float(np.median([float(r["seconds"]) for r in rows]))
        nuclei = sum(int(r["nuclei"]) for r in rows)

    say("| run | wall s | slides / hour | peak RSS GiB (each process) |")
    say("|---|---|---|---|")
    for name, (seconds, peak) in results.items():
        rss = ", ".join(f"{gib:.2f} ({label.split()[-1] if label else '?'})" for gib, label in
                        sorted(peak.values(), reverse=True)[:3])
        say(f"| {name} | {seconds:.1f} | {3600 * args.slides / seconds:.1f} | {rss} |")
    a, b, c, c1 = (results[k][0] for k in list(results)[:4])
    say("")
    say(f"start-up per slide, (a) - (b): {(a - b) / args.slides:.2f} s; scheduling overhead of (c1), one worker with every "
        f"core, against (b): {100 * (c1 / b - 1):+.1f}% (bar: <= 5%); the default (c) against (b): {b / c:.2f}x faster; "
        f"{nuclei} nuclei per cohort")
    say(f"median seconds per slide inside a task: local cluster {per_slide['local']:.1f}, 1-core worker {per_slide[1]:.1f}, "
        f"two 1-core workers {per_slide[2]:.1f}")
    seconds = per_slide[1]
    say(f"{TCGA_BRCA_SLIDES} TCGA slides of this tissue area at {seconds:.1f} s each on a 1-core worker: "
        + ", ".join(f"{workers} workers {TCGA_BRCA_SLIDES * seconds / workers / 3600:.1f} h" for workers in (1, 8, 64))
        + f"; on this machine's default cluster {TCGA_BRCA_SLIDES * c / args.slides / 3600:.1f} h")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
