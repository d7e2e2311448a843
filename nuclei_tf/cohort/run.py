"""A cohort from start to end: the slides whose outputs are complete skipped (checked, not
assumed), one resource-annotated Dask task per other slide, rows recorded as slides finish, a
slide whose worker died retried by the scheduler on another worker (bounded by its
``distributed.scheduler.allowed-failures``) from the strips already recorded."""
import json
import uuid
from pathlib import Path

from nuclei_tf.cohort.tables import CohortTables
from nuclei_tf.cohort.task import finished_row, segment_slide
from nuclei_tf.data.errors import DataError


class CohortStopped(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during a cohort; the message says what is kept and how to continue."""


def check_settings(out_dir, settings):
    """``DIR/cohort.json`` records the cohort's settings; a rerun with others is refused (its
    outputs would mix two models' nuclei)."""
    record = Path(out_dir) / "cohort.json"
    if record.is_file():
        saved = json.loads(record.read_text())
        if saved != settings.to_json():
            changed = sorted(k for k in saved if saved[k] != settings.to_json().get(k))
            raise DataError(out_dir, f"holds a cohort segmented with other settings ({', '.join(changed)}); "
                                     "use another --out, or the same options to continue it")
    else:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps(settings.to_json(), indent=1))


def gpu_workers(client):
    """Whether the cluster's workers declare GPUs (then each task asks for ``GPU: 1``)."""
    workers = client.scheduler_info(n_workers=-1)["workers"].values()
    return any(w.get("resources", {}).get("GPU") for w in workers)


def _lost_row(slide, settings, exc):
    from nuclei_tf.cohort.task import one_line

    return {"id": slide.id, "path": str(slide.path), "model": settings.model_name, "status": "failed",
            "error": f"{slide.path}: its worker died while segmenting it, on every try ({one_line(exc, 'dask')})"}


def run_cohort(slides, out_dir, settings, client, echo=print, progress=True):
    """Segment ``slides`` into ``out_dir/slides`` on ``client``'s cluster; returns the
    :class:`~nuclei_tf.cohort.tables.CohortTables`. Raises :class:`CohortStopped` on Ctrl-C."""
    from distributed import as_completed
    from tqdm import tqdm

    out_dir = Path(out_dir)
    check_settings(out_dir, settings)
    slides_dir = out_dir / "slides"
    slides_dir.mkdir(exist_ok=True)
    tables = CohortTables(out_dir, [s.id for s in slides])
    pending = []
    for slide in slides:
        row = finished_row(slides_dir, slide, settings)
        if row is None:
            pending.append(slide)
        else:
            tables.add(row)
    echo(f"{len(slides)} slides: {len(slides) - len(pending)} complete (skipped), {len(pending)} to segment")
    resources = {"GPU": 1} if gpu_workers(client) else None
    run = uuid.uuid4().hex[:8]
    futures = {client.submit(segment_slide, s, slides_dir, settings, key=f"slide-{s.id}-{run}", pure=False,
                             resources=resources): s for s in pending}
    nuclei = 0
    with tqdm(total=len(pending), desc="slides", unit="slide", disable=not progress or not pending) as bar:
        try:
            for future in as_completed(futures):
                slide = futures[future]
                try:
                    row = future.result()
                except Exception as exc:  # KilledWorker: the scheduler's retries are spent
                    row = _lost_row(slide, settings, exc)
                tables.add(row)
                nuclei += row.get("nuclei") or 0
                if row["status"] != "ok":
                    bar.write(f"failed: {row['error']}")
                bar.set_postfix(nuclei=nuclei, refresh=False)
                bar.update()
        except KeyboardInterrupt:
            client.cancel(list(futures))
            finished = sum(1 for r in tables.rows.values() if r["status"] == "ok")
            raise CohortStopped(f"stopped with {finished} of {len(slides)} slides finished (in {slides_dir}); a slide in "
                                "progress keeps its finished strips: run the same command again to continue") from None
    if tables.rows:
        tables.plot()
    return tables
