"""Whole-slide prediction: a slide (SVS, NDPI, MIRAX, SCN, tiled TIFF, ...) at the model's
resolution, tissue only, strip by strip, resumable, with QuPath-ready outputs in level-0 pixels.

1. :class:`~nuclei_tf.data.slide.ResampledView` reads the pyramid level closest to the model's
   microns per pixel (``bundle.mpp``) and resamples it; the slide's MPP (or ``--mpp``) is required.
2. :func:`~nuclei_tf.preprocess.tissue.tissue_mask` on a thumbnail decides which tiles are
   predicted; ``<stem>.tissue.png`` shows it.
3. :func:`~nuclei_tf.inference.predict.probability_rows` and
   :func:`~nuclei_tf.postprocess.strips.instance_strips` produce nuclei strip by strip; each strip
   is recorded in ``<stem>.parts`` (:class:`~nuclei_tf.inference.resume.StripParts`) and its
   nuclei stream into ``<stem>.csv`` and ``<stem>.geojson`` (QuPath detections with measurements:
   :class:`~nuclei_tf.inference.outputs.NucleusRecords`, as for images).
4. When every strip is done: ``<stem>.labels.tif`` (pyramidal, level-0 pixels of the region),
   ``<stem>.overlay.png`` for regions up to :data:`OVERLAY_MAX_PIXELS` (or on request), and every
   file is renamed from ``.partial`` to its name.
"""
import hashlib
import json
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nuclei_tf.inference.files import NamedFile, naming, partial_path
from nuclei_tf.inference.outputs import SLIDE_SUFFIXES, FinishedRows, NucleusRecords, OverlayRows, output_paths
from nuclei_tf.inference.png import PngRows
from nuclei_tf.inference.predict import prediction_boxes, probability_rows
from nuclei_tf.inference.pyramid import write_label_pyramid
from nuclei_tf.inference.resume import StripParts
from nuclei_tf.inference.sources import SlideSource
from nuclei_tf.postprocess.strips import instance_strips, strip_rows_for
from nuclei_tf.preprocess.tissue import TissueMap, region_tissue_mm2, save_tissue_png, tissue_mask

#: regions with more level-0 pixels than this get no overlay PNG unless asked for
OVERLAY_MAX_PIXELS = 100_000_000
#: long side of the thumbnail that tissue detection and stain statistics use
THUMBNAIL = 2048


@dataclass
class SlideRun:
    """What one ``predict`` of a slide computes (its fingerprint decides whether parts resume)."""

    slide: object
    view: object
    bundle: object
    tissue: bool
    overlay: bool

    def fingerprint(self, model_path):
        settings = json.dumps(self.bundle.settings(), sort_keys=True, default=str)
        return {
            "slide": str(Path(self.slide.path).resolve()),
            "slide_bytes": Path(self.slide.path).stat().st_size,
            "model": str(model_path),
            "model_settings": hashlib.sha256(settings.encode()).hexdigest(),
            "precision": self.bundle.runs_at,  # a resumed run on other hardware must not mix precisions
            "model_mpp": self.bundle.mpp,
            "downsample": self.view.downsample,
            "level": self.view.level,
            "region": [*self.view.origin, *self.view.shape],
            "tissue": self.tissue,
        }

    def file_uuid(self):
        """The label pyramid's OME UUID, a function of what is computed (not of how the model was
        named), so that ``predict`` and a cohort write the same bytes for the same slide."""
        fingerprint = {k: v for k, v in self.fingerprint(None).items() if k != "model"}
        return uuid.uuid5(uuid.NAMESPACE_URL, "nuclei-tf:" + json.dumps(fingerprint, sort_keys=True))


def level0_rows(blocks, view):
    """Model-space label row ``blocks`` ``(top, rows)`` resampled (nearest) onto the level-0 pixels
    of the view's region, yielded as row blocks."""
    width0, height0 = (int(round(s * view.downsample)) for s in view.shape[::-1])
    if view.downsample == 1.0:
        yield from (rows for _, rows in blocks)
        return
    columns = np.minimum((np.arange(width0) / view.downsample).astype(np.int64), view.shape[1] - 1)
    source_rows = np.minimum((np.arange(height0) / view.downsample).astype(np.int64), view.shape[0] - 1)
    emitted = 0
    for top, rows in blocks:
        stop = np.searchsorted(source_rows, top + len(rows))  # level-0 rows whose source row has arrived
        if stop > emitted:
            yield rows[source_rows[emitted:stop] - top][:, columns]
            emitted = stop


class Level0Image:
    """Row slices ``[a:b]`` of the region's level-0 RGB pixels, read from the slide on demand."""

    def __init__(self, slide, origin, width):
        self.slide, self.origin, self.width = slide, origin, width

    def __getitem__(self, rows):
        x, y = self.origin
        return self.slide.read_region(int(x), int(y) + rows.start, 0, self.width, rows.stop - rows.start)


def predict_slide(bundle, slide, view, out_dir, stem, model_path, tissue=True, overlay=None, batch_size=8,
                  progress=True, echo=print):
    """Segment the nuclei of ``view`` (a :class:`~nuclei_tf.data.slide.ResampledView` of ``slide``)
    into ``out_dir``; continues a run of the same command that was stopped. Returns
    ``(paths, nuclei, tissue mm^2)``: the region's area times its tissue fraction on the mask that
    chose the tiles (all of it without tissue detection; None where the resolution is assumed)."""
    if bundle.postprocess.split == "polygons":
        raise ValueError("whole-slide prediction with a rays model is not supported: its 33 outputs per pixel "
                         "do not fit the slide's row blocks; predict plain images (PNG, TIFF tiles at the model's resolution)")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    width0, height0 = (int(round(s * view.downsample)) for s in view.shape[::-1])
    overlay = width0 * height0 <= OVERLAY_MAX_PIXELS if overlay is None else overlay
    # the final names, none of them a folder, checked before any work
    paths = output_paths(out_dir, stem, {k: v for k, v in SLIDE_SUFFIXES.items() if overlay or k != "overlay"})
    tissue_png = paths.pop("tissue")
    run = SlideRun(slide, view, bundle, tissue, overlay)
    thumbnail = slide.thumbnail(THUMBNAIL)
    tissue_map = None
    if tissue:
        mask = tissue_mask(thumbnail)
        save_tissue_png(mask, tissue_png, thumbnail)
        tissue_map = TissueMap(mask, slide.dimensions[0] / mask.shape[1])
    source = SlideSource(view, tissue_map, thumbnail)
    partial = {kind: partial_path(path) for kind, path in paths.items()}
    parts = StripParts(out_dir / f"{stem}.parts", run.fingerprint(model_path))
    _report_plan(source, bundle, view, slide, parts, echo)
    height, width = view.shape
    state = parts.progress or {}
    for kind in ("csv", "geojson"):
        with open(partial[kind], "a+b") as handle:  # drop what a stopped run wrote after its last strip
            handle.truncate(state.get(f"{kind}_bytes", 0))
    finished = FinishedRows(width)
    finished.top, band = parts.band()
    if band is not None:
        finished.band = band
    with NamedFile(partial["csv"], "a", name=paths["csv"], newline="") as table, \
            NamedFile(partial["geojson"], "a", name=paths["geojson"]) as features:
        records = NucleusRecords(table, features, stem, bundle.mpp, view.to_level0, view.downsample, state.get("nuclei", 0))
        if not state.get("complete"):
            resume = state.get("resume")
            blocks = probability_rows(bundle, source, batch_size, progress, start_row=resume["row"] if resume else 0)
            for strip in instance_strips(blocks, height, bundle.postprocess, strip_rows_for(width), resume=resume):
                records.add(strip, source.read)
                top, rows = finished.add(strip)
                table.flush()
                features.flush()
                with naming(parts.folder):
                    parts.save(top, rows, finished.top, finished.band, {
                        "resume": strip.resume, "nuclei": records.count, "row": strip.final, "rows": height,
                        "csv_bytes": table.tell(), "geojson_bytes": features.tell(), "complete": strip.final >= height})
        if finished.top != height:
            raise ValueError(f"segmentation of {stem} ended at row {finished.top} of {height}")
        records.close()
    _write_labels(parts, view, slide, partial, paths, run.file_uuid())
    for kind, path in partial.items():
        path.replace(paths[kind])
    parts.remove()
    return paths, records.count, None if view.assumed_mpp else region_tissue_mm2(view.roi, view.slide_mpp, tissue_map)


def _report_plan(source, bundle, view, slide, parts, echo):
    height, width = view.shape
    echo(f"{slide.path}: {slide.dimensions[0]} x {slide.dimensions[1]} px at {view.slide_mpp:.4f} um/px "
         f"-> level {view.level}, resampled x{1 / view.downsample:.3f} to the model's {bundle.mpp} um/px "
         f"({width} x {height} px)")
    if source.tissue is not None:
        grid = prediction_boxes(bundle, view.shape)
        kept = sum(source.has_tissue(*box) for box in grid)
        echo(f"tissue: {100 * source.tissue.kept_fraction:.1f}% of the slide; {kept} of {len(grid)} tiles kept "
             f"({100 * kept / len(grid):.1f}%)")
    if parts.strips:
        progress = parts.progress
        echo(f"resuming after strip {parts.strips} (row {progress['row']} of {progress['rows']}, "
             f"{progress['nuclei']} nuclei so far) from {parts.folder}")


def _write_labels(parts, view, slide, partial, paths, file_uuid):
    """The level-0 label pyramid (and overlay) of the region, from the recorded strips."""
    width0, height0 = (int(round(s * view.downsample)) for s in view.shape[::-1])
    blocks = level0_rows(parts.final_rows(), view)
    with ExitStack() as stack:
        drawer = None
        if "overlay" in paths:
            png = stack.enter_context(PngRows(partial["overlay"], width0, height0, name=paths["overlay"]))
            drawer = OverlayRows(Level0Image(slide, view.origin, width0), png)
            blocks = _drawn(blocks, drawer)
        with naming(paths["labels"]):  # the pyramid writer and its spools
            write_label_pyramid(partial["labels"], blocks, height0, width0, mpp=view.slide_mpp, uuid=file_uuid)
        if drawer is not None:
            drawer.close()


def _drawn(blocks, drawer):
    """``blocks``, each drawn on the overlay as it passes."""
    top = 0
    for rows in blocks:
        drawer.add(top, rows)
        top += len(rows)
        yield rows


def stop_message(out_dir, stem):
    """What to tell a user whose slide run was stopped (Ctrl-C, a failed read)."""
    progress = Path(out_dir) / f"{stem}.parts" / "progress.json"
    if not progress.is_file():
        return "no strip was finished; nothing is kept"
    state = json.loads(progress.read_text())
    return (f"stopped after strip {state['strips']} (row {state['row']} of {state['rows']}, {state['nuclei']} nuclei); "
            f"the finished strips are kept in {progress.parent}: run the same command again to continue")

