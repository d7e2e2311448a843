"""One slide of a cohort on a Dask worker: the model bundle loaded once per worker process and
kept for every slide it gets, the slide segmented by the same
:func:`~nuclei_tf.inference.predict_file.predict_file` as ``predict``, its summary row returned
and recorded next to its outputs (``<id>.cohort.json``, written last: the slide is complete)."""
import fcntl
import json
import logging
import os
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

log = logging.getLogger("nuclei_tf.cohort")

#: this worker process's state: TensorFlow ``started``, the ``bundle`` loaded and its settings ``key``
_LOADED = {}


@dataclass(frozen=True)
class CohortSettings:
    """What every slide of a cohort is segmented with (``predict``'s options; ``mpp`` for
    slides whose manifest row gives none)."""

    model: Optional[str] = None
    precision: Optional[str] = None
    tta: bool = False
    min_area: Optional[float] = None
    batch_size: int = 8
    tissue: bool = True
    overlay: Optional[bool] = None
    mpp: Optional[float] = None

    @property
    def model_name(self):
        return self.model or "shipped"

    def to_json(self):
        return asdict(self)


def _start_tensorflow():
    """Once per process: the allocator settings and TensorFlow's quiet start that ``nuclei-tf``
    itself applies, with ``NUCLEI_TF_THREADS`` threads where that is set (before any op runs)."""
    if _LOADED.get("started"):
        return
    from nuclei_tf.cli.allocator import tune_allocator
    from nuclei_tf.cli.tensorflow_setup import start_tensorflow
    from nuclei_tf.cohort.engine import THREADS_VARIABLE

    tune_allocator()
    log.info(start_tensorflow())
    threads = os.environ.get(THREADS_VARIABLE)  # the local cluster's share of the cores
    if threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(int(threads))
        tf.config.threading.set_inter_op_parallelism_threads(int(threads))
    _LOADED["started"] = True


def worker_bundle(settings):
    """The model bundle for ``settings``, loaded by the first slide this process gets and kept."""
    key = (settings.model, settings.precision, settings.tta, settings.min_area)
    if _LOADED.get("key") != key:
        _start_tensorflow()
        from nuclei_tf.inference import load_bundle

        bundle = load_bundle(settings.model, precision=settings.precision)
        bundle.tta = bundle.tta or settings.tta
        if settings.min_area is not None:
            bundle.keep_nuclei_from(settings.min_area)
        _LOADED.update(key=key, bundle=bundle)
    return _LOADED["bundle"]


def record_path(out_dir, slide_id):
    return Path(out_dir) / f"{slide_id}.cohort.json"


def one_line(exc, path):
    """An exception as one line starting with the slide's path: the nuclei-tf errors (which name
    their file) as they are, others with their type."""
    from nuclei_tf.data.errors import DataError

    text = str(exc) if isinstance(exc, DataError) else f"{path}: {type(exc).__name__}: {exc}"
    return " ".join(text.split())


def worker_name():
    try:
        from distributed import get_worker

        return get_worker().address
    except ValueError:  # not on a Dask worker
        return f"pid {os.getpid()}"


@contextmanager
def slide_lock(out_dir, slide_id):
    """Hold an exclusive lock on one slide's outputs (``out_dir/.locks/<id>.lock``, a POSIX
    record lock: released by the system when its worker dies, and honoured on NFS), so that a
    task that Ctrl-C cancelled but that still runs on its worker and the task of the rerun never
    write one slide at once."""
    folder = Path(out_dir) / ".locks"
    folder.mkdir(exist_ok=True)
    with open(folder / f"{slide_id}.lock", "a") as handle:
        fcntl.lockf(handle, fcntl.LOCK_EX)
        yield


def segment_slide(slide, out_dir, settings):
    """Segment one :class:`~nuclei_tf.cohort.slides.CohortSlide` into ``out_dir`` and return its
    ``cohort.csv`` row (``status`` ok or failed, with ``error``); a stopped slide resumes from
    its finished strips, a slide finished meanwhile (by a cancelled task) is not redone."""
    with slide_lock(out_dir, slide.id):
        return finished_row(out_dir, slide, settings) or _segment(slide, out_dir, settings)


def _segment(slide, out_dir, settings):
    started = time.perf_counter()
    row = {"id": slide.id, "path": str(slide.path), "model": settings.model_name, "worker": worker_name()}
    mpp = slide.mpp if slide.mpp is not None else settings.mpp
    progress = Path(out_dir) / f"{slide.id}.parts" / "progress.json"  # strips of a stopped or killed run
    row["resumed_after_strip"] = json.loads(progress.read_text())["strips"] if progress.is_file() else 0
    try:
        bundle = worker_bundle(settings)
        from nuclei_tf.cohort.summary import slide_summary
        from nuclei_tf.data.slide import open_slide
        from nuclei_tf.inference.predict_file import check_size, plain_pixels, predict_file

        with open_slide(slide.path) as opened:
            check_size(opened)
        plain = plain_pixels(bundle, slide.path, mpp, slide.roi)
        prediction = predict_file(bundle, slide.path, out_dir, plain, stem=slide.id, mpp=mpp, roi=slide.roi,
                                  tissue=settings.tissue, overlay=settings.overlay, batch_size=settings.batch_size,
                                  model_name=settings.model_name, echo=log.info, progress=False)
        row.update(slide_summary(prediction, slide.path, slide.roi, settings.tissue), status="ok")
    except Exception as exc:  # any failure of this slide is its row, never the cohort's end
        row.update(status="failed", error=one_line(exc, slide.path))
    row["seconds"] = round(time.perf_counter() - started, 2)
    if row["status"] == "ok":
        outputs = {kind: [p.name, p.stat().st_size] for kind, p in _outputs(out_dir, slide.id).items()}
        tmp = record_path(out_dir, slide.id).with_suffix(".tmp")
        tmp.write_text(json.dumps({"row": row, "outputs": outputs, "settings": settings.to_json(),
                                   "slide": _slide_options(slide)}, indent=1))
        os.replace(tmp, record_path(out_dir, slide.id))
    return row


def _slide_options(slide):
    return {"mpp": slide.mpp, "roi": list(slide.roi) if slide.roi else None}


def _outputs(out_dir, slide_id):
    """The output files of a slide that exist (a plain image has no tissue PNG, a large region no overlay)."""
    from nuclei_tf.inference.outputs import SLIDE_SUFFIXES

    paths = {kind: Path(out_dir) / f"{slide_id}{suffix}" for kind, suffix in SLIDE_SUFFIXES.items()}
    return {kind: p for kind, p in paths.items() if p.is_file()}


def finished_row(out_dir, slide, settings):
    """The recorded row of a slide whose outputs are complete, or None: its record exists, names
    these settings, every file it lists has the recorded size, and no unfinished strips remain."""
    record = record_path(out_dir, slide.id)
    if not record.is_file() or (Path(out_dir) / f"{slide.id}.parts").exists():
        return None
    try:
        saved = json.loads(record.read_text())
    except ValueError:
        return None
    if (saved.get("settings") != settings.to_json() or saved.get("slide") != _slide_options(slide)
            or saved["row"].get("path") != str(slide.path)):
        return None
    for name, size in saved["outputs"].values():
        file = Path(out_dir) / name
        if not file.is_file() or file.stat().st_size != size:
            return None
    return saved["row"]
