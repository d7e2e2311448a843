"""The slides of a cohort: files, folders (searched as ``predict`` searches them) and CSV
manifests (``path`` column; optional ``id``, ``mpp``, ``roi`` as ``x,y,w,h`` level-0 pixels),
each with the id its outputs are named by. Nothing here imports TensorFlow: a Dask worker
unpickles these before it sets TensorFlow up."""
import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

from nuclei_tf.data.errors import DataError

MANIFEST_COLUMNS = ("path", "id", "mpp", "roi")


@dataclass(frozen=True)
class CohortSlide:
    """One slide of a cohort: its outputs are ``<id>.*``; ``mpp`` and ``roi`` override the
    cohort's (``None``: the file's resolution, the whole slide)."""

    id: str
    path: Path
    mpp: Optional[float] = None
    roi: Optional[Tuple[int, int, int, int]] = None


def _number(manifest, line, column, text, kind):
    try:
        return kind(text)
    except ValueError:
        raise DataError(manifest, f"line {line}: {column} {text!r} is not a number") from None


def read_manifest(manifest):
    """The slides a CSV manifest lists (relative paths are relative to its folder); an unknown
    column, a missing file, a bad ``mpp`` or ``roi`` is refused naming its line."""
    manifest = Path(manifest)
    with open(manifest, newline="") as handle:
        rows = list(csv.DictReader(handle))
        columns = rows[0].keys() if rows else ()
    if "path" not in columns:
        raise DataError(manifest, "a manifest needs a 'path' column (optional: id, mpp, roi) and one row per slide")
    unknown = sorted(set(columns) - set(MANIFEST_COLUMNS))
    if unknown:
        raise DataError(manifest, f"unknown column(s) {', '.join(unknown)}; a manifest has {', '.join(MANIFEST_COLUMNS)}")
    slides = []
    for line, row in enumerate(rows, start=2):
        path = Path(row["path"].strip()).expanduser()
        path = path if path.is_absolute() else manifest.parent / path
        if not path.is_file():
            raise DataError(manifest, f"line {line}: {row['path']}: no such file")
        mpp = (row.get("mpp") or "").strip()
        mpp = _number(manifest, line, "mpp", mpp, float) if mpp else None
        if mpp is not None and not 0.05 <= mpp <= 20:
            raise DataError(manifest, f"line {line}: mpp {mpp} is not a microscope resolution (expected 0.05-20 um/px)")
        roi = (row.get("roi") or "").strip()
        if roi:
            roi = tuple(_number(manifest, line, "roi", v, int) for v in roi.split(","))
            if len(roi) != 4 or roi[2] <= 0 or roi[3] <= 0 or min(roi[:2]) < 0:
                raise DataError(manifest, f"line {line}: roi {row['roi']!r} is not x,y,w,h with w, h > 0")
        slides.append(CohortSlide((row.get("id") or "").strip() or path.stem, path.resolve(), mpp, roi or None))
    return slides


def cohort_slides(inputs):
    """Every slide of ``inputs`` (files, folders, ``.csv`` manifests), in order, each file once;
    two slides with one id are refused before any work (their outputs would collide)."""
    from nuclei_tf.inference.inputs import folder_inputs

    slides = []
    for given in map(Path, inputs):
        if given.is_dir():
            slides += [CohortSlide(p.stem, p.resolve()) for p in folder_inputs(given)]
        elif given.suffix.lower() == ".csv":
            slides += read_manifest(given)
        elif given.is_file():
            slides.append(CohortSlide(given.stem, given.resolve()))
        else:
            raise DataError(given, "no such file or folder")
    slides = list({(s.path, s.roi): s for s in slides}.values())
    seen = {}
    for slide in slides:
        if slide.id in seen:
            raise DataError(slide.path, f"and {seen[slide.id]} would both write {slide.id}.* in the cohort; give them "
                                        "distinct ids in a manifest (an 'id' column)")
        seen[slide.id] = slide.path
    if not slides:
        raise DataError(", ".join(map(str, inputs)), "names no slide")
    return slides
