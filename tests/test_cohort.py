"""`nuclei-tf cohort` on real Dask processes (issue 32): a scheduler and two workers started on
127.0.0.1 by the tests and stopped by them, the default LocalCluster, a corrupt slide, a slide
without a resolution, a worker killed mid-slide, a rerun that skips what finished, the manifest,
and outputs byte-identical to `predict`'s."""
import csv
import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tifffile
from click.testing import CliRunner
from PIL import Image

from conftest import SHARED_DATA
from nuclei_tf.cli.main import cli
from nuclei_tf.cohort.slides import CohortSlide, cohort_slides, read_manifest
from nuclei_tf.cohort.summary import nucleus_statistics, tissue_area_mm2
from nuclei_tf.data.errors import DataError
from nuclei_tf.inference import ModelBundle, save_bundle
from nuclei_tf.inference.outputs import SLIDE_SUFFIXES
from nuclei_tf.postprocess import PostProcess

SAMPLE = np.asarray(Image.open("nuclei_tf/data/sample/breast_sample.png").convert("RGB"))
WSI = SHARED_DATA / "WSI"
#: the tests' own process computes in float32 (conftest); the Dask workers are told so
F32 = ("--precision", "float32")


def write_pyramid(path, level0, levels=3):
    """A tiled pyramidal TIFF at 0.25 um/px."""
    with tifffile.TiffWriter(path) as tif:
        for k in range(levels):
            tif.write(level0[:: 2**k, :: 2**k], tile=(128, 128), compression="zlib", photometric="rgb",
                      resolution=(4e4 / 2**k, 4e4 / 2**k), resolutionunit="CENTIMETER", subfiletype=1 if k else 0)
    return path


def small_slide(path, shift):
    """The sample H&E on white glass, at a slide-specific place."""
    level0 = np.full((768, 1024, 3), 255, np.uint8)
    level0[50 + shift : 50 + shift + 512, 100 : 100 + 512] = SAMPLE
    return write_pyramid(path, level0)


@pytest.fixture(scope="module")
def darkness(tmp_path_factory):
    """A model folder whose nuclei are the dark pixels: fast and deterministic."""
    inputs = keras.Input((None, None, 3))
    conv = keras.layers.Conv2D(1, 1, activation="sigmoid", name="probabilities")
    model = keras.Model(inputs, conv(inputs))
    conv.set_weights([np.full((1, 1, 3, 1), -20.0 / 3), np.array([9.0])])
    bundle = ModelBundle(model, tile=64, overlap=0.25, mpp=0.25, postprocess=PostProcess(threshold=0.5, split="none", min_size=8))
    return save_bundle(bundle, tmp_path_factory.mktemp("model") / "darkness")


@pytest.fixture(scope="module")
def slides(tmp_path_factory):
    """case0.tif, cases/case1.tif, cases/case2.tif and a corrupt broken.svs."""
    folder = tmp_path_factory.mktemp("slides")
    (folder / "cases").mkdir()
    small_slide(folder / "case0.tif", 0)
    for k in (1, 2):
        small_slide(folder / "cases" / f"case{k}.tif", 40 * k)
    (folder / "broken.svs").write_bytes(b"\x00 not a slide " * 64)
    return folder


def run_cli(*args):
    return CliRunner().invoke(cli, [*map(str, args)])


def same_outputs(a, b, stem_a, stem_b=None):
    """Every output file of ``stem_a`` in folder ``a`` equals ``stem_b``'s in ``b``, byte for byte."""
    compared = 0
    for suffix in SLIDE_SUFFIXES.values():
        left, right = a / f"{stem_a}{suffix}", b / f"{stem_b or stem_a}{suffix}"
        assert left.is_file() == right.is_file(), (left, right)
        if left.is_file():
            assert left.read_bytes() == right.read_bytes(), f"{left} differs from {right}"
            compared += 1
    assert compared >= 4


@pytest.fixture
def dask_cluster(tmp_path):
    """A real `dask scheduler` and two `dask worker` processes (one thread each, no nanny) on
    127.0.0.1; stopped, and checked gone, at the end."""
    from distributed import Client

    scheduler_file = tmp_path / "scheduler.json"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    logs = open(tmp_path / "dask.log", "w")
    processes = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
                                   "--no-dashboard", "--scheduler-file", str(scheduler_file)], stdout=logs, stderr=logs, env=env)]
    deadline = time.monotonic() + 60
    while not scheduler_file.is_file() and time.monotonic() < deadline:
        time.sleep(0.1)
    for name in ("w1", "w2"):
        processes.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file",
                                           str(scheduler_file), "--nthreads", "1", "--no-nanny", "--host", "127.0.0.1",
                                           "--no-dashboard", "--name", name], stdout=logs, stderr=logs, env=env))
    address = json.loads(scheduler_file.read_text())["address"]
    with Client(address, timeout="30s") as client:
        client.wait_for_workers(2, timeout=60)
        pids = client.run(os.getpid)
    try:
        yield address, pids
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=5)  # a worker still inside a task's TensorFlow call can take longer: killed
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        logs.close()
        assert all(p.poll() is not None for p in processes)


def test_a_manifest_gives_ids_resolutions_and_regions_and_refuses_bad_rows(tmp_path, slides):
    manifest = tmp_path / "cohort.csv"
    manifest.write_text(f"path,id,mpp,roi\n{slides / 'case0.tif'},first,0.5,\"10,20,300,200\"\ncases/case1.tif,,,\n")
    (tmp_path / "cases").symlink_to(slides / "cases")
    first, second = read_manifest(manifest)
    assert first == CohortSlide("first", (slides / "case0.tif").resolve(), 0.5, (10, 20, 300, 200))
    assert second.id == "case1" and second.mpp is None and second.roi is None
    for text, problem in (("name\nx.tif\n", "needs a 'path' column"), ("path,colour\nx.tif,red\n", "unknown column(s) colour"),
                          ("path\nmissing.tif\n", "line 2: missing.tif: no such file"),
                          (f"path,mpp\n{slides / 'case0.tif'},fast\n", "line 2: mpp 'fast' is not a number"),
                          (f"path,mpp\n{slides / 'case0.tif'},40\n", "mpp 40.0 is not a microscope resolution"),
                          (f"path,roi\n{slides / 'case0.tif'},\"1,2,3\"\n", "is not x,y,w,h")):
        manifest.write_text(text)
        with pytest.raises(DataError, match=problem.replace("(", r"\(").replace(")", r"\)")):
            read_manifest(manifest)
    twice = tmp_path / "twice"
    (twice / "a").mkdir(parents=True)
    (twice / "a" / "case0.tif").write_bytes((slides / "case0.tif").read_bytes())
    with pytest.raises(DataError, match="would both write case0"):
        cohort_slides([slides, twice])
    result = run_cli("cohort", slides / "case0.tif", twice / "a" / "case0.tif", "--out", tmp_path / "out")
    assert result.exit_code == 1 and "would both write case0" in result.output and not (tmp_path / "out").exists()


def test_slide_statistics_are_the_median_and_iqr_of_the_nucleus_table(tmp_path, slides):
    table = tmp_path / "t.csv"
    rng = np.random.default_rng(0)
    areas, od = rng.uniform(10, 60, 101), rng.uniform(0.1, 1.5, 101)
    with open(table, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "area_um2", "perimeter_um", "circularity", "hematoxylin_od"])
        for k in range(101):
            writer.writerow([k, areas[k], 2 * areas[k], "", od[k]])
    stats = nucleus_statistics(table)
    q1, median, q3 = np.percentile(areas, [25, 50, 75])
    assert stats["nuclei"] == 101 and stats["area_um2_median"] == pytest.approx(median, abs=1e-6)
    assert stats["area_um2_iqr"] == pytest.approx(q3 - q1, abs=1e-6)
    assert stats["perimeter_um_median"] == pytest.approx(2 * median, abs=1e-5) and stats["circularity_median"] is None
    area, mpp = tissue_area_mm2(slides / "case0.tif", tissue=False)
    assert mpp == pytest.approx(0.25) and area == pytest.approx(1024 * 768 * 0.25**2 / 1e6)
    tissue, _ = tissue_area_mm2(slides / "case0.tif", roi=(100, 50, 512, 512))
    assert 0.5 * 512 * 512 * 0.25**2 / 1e6 < tissue <= 512 * 512 * 0.25**2 / 1e6


def test_a_cohort_on_a_running_cluster_matches_predict_records_failures_and_skips_finished_slides(
        tmp_path, slides, darkness, dask_cluster):
    address, _ = dask_cluster
    manifest = tmp_path / "real.csv"
    rows = ["path,id,mpp,roi", f"{slides / 'case0.tif'},case0,,"]
    cmu, tcga = WSI / "cmu-1-small-region.svs", WSI / "tcga-cr-7395-01a-01-ts1.svs"
    if cmu.is_file() and tcga.is_file():
        rows += [f"{cmu},,,\"700,1200,300,200\"", f"{tcga},tcga-no-mpp,,\"1000,1000,256,256\""]
    manifest.write_text("\n".join(rows) + "\n")
    out = tmp_path / "cohort"
    result = run_cli("cohort", manifest, slides / "cases", slides / "broken.svs", "--model", darkness, *F32, "--out", out,
                     "--scheduler", address)
    assert result.exit_code == 0, result.output
    table = {row["id"]: row for row in csv.DictReader(open(out / "cohort.csv"))}
    failures = {row["id"]: row for row in csv.DictReader(open(out / "failures.csv"))}
    expected_ok = {"case0", "case1", "case2"} | ({"cmu-1-small-region"} if "cmu-1-small-region" in table else set())
    assert {k for k, r in table.items() if r["status"] == "ok"} == expected_ok
    assert "broken" in failures and "unsupported or corrupt slide" in failures["broken"]["error"]
    if "tcga-no-mpp" in table:
        assert "no microns-per-pixel" in failures["tcga-no-mpp"]["error"] and "pass --mpp" in failures["tcga-no-mpp"]["error"]
    assert "1 failed" in result.output or "2 failed" in result.output
    for row in (table[k] for k in expected_ok):
        assert int(row["nuclei"]) > 20 and float(row["tissue_mm2"]) > 0 and float(row["area_um2_median"]) > 0
        assert float(row["nuclei_per_mm2"]) == pytest.approx(int(row["nuclei"]) / float(row["tissue_mm2"]), rel=1e-3)
        assert row["worker"].startswith("tcp://127.0.0.1:") and row["model"] == str(darkness)
    assert (out / "cohort.png").stat().st_size > 1000
    assert float(table["case0"]["tissue_mm2"]) == pytest.approx(tissue_area_mm2(slides / "case0.tif")[0], rel=1e-5)
    reference = tmp_path / "predict"
    assert run_cli("predict", slides / "cases" / "case1.tif", "--model", darkness, *F32, "--out", reference).exit_code == 0
    same_outputs(out / "slides", reference, "case1")
    if "cmu-1-small-region" in table:  # the real 20x slide's region, resampled to 0.25 um/px on both paths
        assert run_cli("predict", cmu, "--roi", "700,1200,300,200", "--model", darkness, *F32, "--out", reference).exit_code == 0
        same_outputs(out / "slides", reference, "cmu-1-small-region")

    (out / "slides" / "case2.csv").write_text("id\n")  # damaged after it finished: checked, not assumed
    again = run_cli("cohort", manifest, slides / "cases", slides / "broken.svs", "--model", darkness, *F32, "--out", out,
                    "--scheduler", address)
    assert again.exit_code == 0, again.output
    complete = len(expected_ok) - 1
    assert f"{complete} complete (skipped), {len(table) - complete} to segment" in again.output
    same_outputs(out / "slides", reference, "case1")
    assert run_cli("predict", slides / "cases" / "case2.tif", "--model", darkness, *F32, "--out", reference).exit_code == 0
    same_outputs(out / "slides", reference, "case2")
    other = run_cli("cohort", slides / "cases", "--model", darkness, *F32, "--tta", "--out", out, "--scheduler", address)
    assert other.exit_code == 1 and "other settings (tta)" in other.output and "Dask" not in other.output


def tall_slide(path, shift):
    """512 x 8192 px of dense tissue: 2 strips of 4096 rows (``strip_rows_for(512)``)."""
    return write_pyramid(path, np.roll(np.tile(SAMPLE, (16, 1, 1)), shift, axis=0))


def start_cohort(slide, out, darkness, address):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen([sys.executable, "-m", "nuclei_tf", "cohort", str(slide), "--model", str(darkness), *F32,
                             "--out", str(out), "--scheduler", address], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env, preexec_fn=_default_sigint)


def _default_sigint():
    """A shell's background job (``pytest &``) ignores SIGINT, and so would the child: restore it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for_a_strip(run, parts):
    """Wait until the slide's first strip is recorded (its run still going)."""
    progress = parts / "progress.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and run.poll() is None:
        if progress.is_file() and json.loads(progress.read_text())["strips"] >= 1:
            return
        time.sleep(0.02)
    raise AssertionError(f"no strip recorded while the cohort ran: {run.communicate()[0]}")


def test_ctrl_c_and_a_killed_worker_lose_no_finished_work(tmp_path, darkness, dask_cluster):
    from distributed import Client

    address, pids = dask_cluster
    out = tmp_path / "cohort"
    stopped = tall_slide(tmp_path / "stopped.tif", 0)
    run = start_cohort(stopped, out, darkness, address)
    wait_for_a_strip(run, out / "slides" / "stopped.parts")
    run.send_signal(signal.SIGINT)
    output, _ = run.communicate(timeout=60)
    assert run.returncode == 130 and "run the same command again to continue" in output, output
    again = start_cohort(stopped, out, darkness, address)  # the cancelled task may still run: the rerun waits for it
    output, _ = again.communicate(timeout=180)
    assert again.returncode == 0 and "1 of 1 slides segmented" in output, output
    assert run_cli("predict", stopped, "--model", darkness, *F32, "--out", tmp_path / "predict").exit_code == 0
    same_outputs(out / "slides", tmp_path / "predict", "stopped")

    killed = tall_slide(tmp_path / "killed.tif", 100)
    run = start_cohort(killed, out, darkness, address)
    wait_for_a_strip(run, out / "slides" / "killed.parts")
    with Client(address, timeout="30s") as client:
        busy = [w for w, keys in client.processing().items() if keys]
    assert len(busy) == 1
    os.kill(pids[busy[0]], signal.SIGKILL)
    output, _ = run.communicate(timeout=180)
    assert run.returncode == 0 and "1 of 2 slides" not in output, output
    record = json.loads((out / "slides" / "killed.cohort.json").read_text())
    assert record["row"]["status"] == "ok" and record["row"]["worker"] != busy[0]
    assert record["row"]["resumed_after_strip"] >= 1, "the other worker continued from the recorded strips"
    assert run_cli("predict", killed, "--model", darkness, *F32, "--out", tmp_path / "predict").exit_code == 0
    same_outputs(out / "slides", tmp_path / "predict", "killed")


def _cluster_leftovers(before):
    """Child processes (Python's own multiprocessing resource tracker aside) and listening ports
    of this process that were not there ``before``."""
    import psutil

    me = psutil.Process()
    children = {p.pid for p in me.children(recursive=True) if "resource_tracker" not in " ".join(p.cmdline())}
    ports = {c.laddr.port for c in me.net_connections("tcp") if c.status == psutil.CONN_LISTEN}
    return children - before[0], ports - before[1]


def test_the_default_local_cluster_runs_and_leaves_nothing_behind(tmp_path, slides, darkness):
    before = _cluster_leftovers((set(), set()))
    result = run_cli("cohort", slides / "case0.tif", "--model", darkness, *F32, "--out", tmp_path / "out", "--no-overlay")
    assert result.exit_code == 0, result.output
    from nuclei_tf.cohort.engine import cpu_workers

    assert f"Dask: {cpu_workers()[0]} worker(s) at tcp://127.0.0.1:" in result.output and "dashboard" in result.output
    row, = csv.DictReader(open(tmp_path / "out" / "cohort.csv"))
    assert row["status"] == "ok" and int(row["nuclei"]) > 20
    assert not (tmp_path / "out" / "slides" / "case0.overlay.png").exists()
    deadline = time.monotonic() + 20
    while any(_cluster_leftovers(before)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _cluster_leftovers(before) == (set(), set()), "the cluster's processes and ports are gone"


def test_slurm_job_script_and_gpu_workers():
    from nuclei_tf.cohort.engine import cpu_workers, gpu_worker_specs

    gib = 2**30
    assert cpu_workers(2, 16 * gib) == (2, 1) and cpu_workers(8, 4 * gib) == (1, 8) and cpu_workers(16, 10 * gib) == (4, 4)
    assert cpu_workers(8, 64 * gib, workers=2) == (2, 4)

    result = run_cli("cohort", "--slurm", "--dry-run", "--partition", "gpu", "--account", "lab", "--gpus-per-job", "1",
                     "--cores", "6", "--memory", "24GB", "--walltime", "02:00:00", "--out", "x", "README.md")
    assert result.exit_code == 0, result.output
    for line in ("#SBATCH -p gpu", "#SBATCH -A lab", "#SBATCH --cpus-per-task=6", "#SBATCH -t 02:00:00",
                 "#SBATCH --gres=gpu:1", "--nthreads 1", "--resources GPU=1", sys.executable):
        assert line in result.output, line
    assert run_cli("cohort", "--dry-run", "--out", "x", "README.md").exit_code == 2
    specs = gpu_worker_specs(2)
    assert [s["options"]["env"]["CUDA_VISIBLE_DEVICES"] for s in specs.values()] == ["0", "1"]
    assert all(s["options"]["resources"] == {"GPU": 1} and s["options"]["nthreads"] == 1 for s in specs.values())


def test_the_tables_are_rewritten_whole_as_slides_finish(tmp_path):
    from nuclei_tf.cohort.tables import CohortTables

    tables = CohortTables(tmp_path, ["b", "a", "c"])
    tables.add({"id": "a", "path": "/x/a.svs", "status": "ok", "nuclei": 10, "tissue_mm2": 0.5, "nuclei_per_mm2": 20.0})
    tables.add({"id": "b", "path": "/x/b.svs", "status": "failed", "error": "/x/b.svs: corrupt", "worker": "tcp://w"})
    assert [r["id"] for r in csv.DictReader(open(tmp_path / "cohort.csv"))] == ["b", "a"], "in the order given"
    assert list(csv.DictReader(open(tmp_path / "failures.csv"))) == [
        {"id": "b", "path": "/x/b.svs", "error": "/x/b.svs: corrupt", "worker": "tcp://w"}]
    assert not list(tmp_path.glob("*.tmp"))
    tables.plot()
    assert (tmp_path / "cohort.png").stat().st_size > 1000
    pq = pytest.importorskip("pyarrow.parquet", reason="cohort.parquet is written only where pyarrow is installed")
    table = pq.read_table(tmp_path / "cohort.parquet").to_pylist()
    assert [r["id"] for r in table] == ["b", "a"] and table[1]["nuclei"] == 10 and table[0]["status"] == "failed"


def test_a_worker_loads_the_model_once_for_all_its_slides(darkness):
    from nuclei_tf.cohort.task import CohortSettings, worker_bundle

    settings = CohortSettings(model=str(darkness), precision="float32")
    first = worker_bundle(settings)
    assert worker_bundle(CohortSettings(model=str(darkness), precision="float32")) is first
    assert worker_bundle(CohortSettings(model=str(darkness), precision="float32", tta=True)) is not first
