"""Writing a segmentation: ``<stem>.labels.tif`` (int32 instances, tiled), ``<stem>.overlay.png``
(outlines on the image), ``<stem>.geojson`` (nucleus polygons QuPath imports as detections, with
their measurements) and ``<stem>.csv`` (one row per nucleus: :data:`CSV_COLUMNS`), the same columns
for images and slides.

Everything is written while the nuclei arrive strip by strip
(:class:`~nuclei_tf.postprocess.strips.InstanceStrip`), so a whole slide needs neither a
full-size label map nor a copy of the image: label rows leave as soon as they are final
(TIFF tile row by tile row, PNG row by row), and each nucleus' polygon and table row as soon
as the strip that owns it is emitted. Files appear under their names only when complete.
"""
import csv
import json
import uuid
from contextlib import ExitStack
from pathlib import Path

import cv2
import numpy as np
import tifffile
from scipy import ndimage

from nuclei_tf.inference.files import NamedFile, check_final_names, naming, partial_path
from nuclei_tf.inference.png import PngRows
from nuclei_tf.postprocess.measurements import nucleus_measurements
from nuclei_tf.postprocess.strips import InstanceStrip

OUTLINE = (0, 255, 0)
TIFF_TILE = 256
SUFFIXES = {"labels": ".labels.tif", "overlay": ".overlay.png", "geojson": ".geojson", "csv": ".csv"}
#: a slide's outputs add its tissue mask
SLIDE_SUFFIXES = {**SUFFIXES, "tissue": ".tissue.png"}
#: the measurements of every nucleus (:func:`~nuclei_tf.postprocess.measurements.nucleus_measurements`),
#: named alike in the CSV and in the GeoJSON; pixel ones in the output's pixels (an image's, a slide's
#: level 0), um ones empty (CSV) or absent (GeoJSON) where no resolution is known
MEASUREMENTS = ("area_px", "perimeter_px", "area_um2", "perimeter_um", "circularity", "hematoxylin_od")
CSV_COLUMNS = ("id", "centroid_x", "centroid_y", *MEASUREMENTS)


def output_paths(out_dir, stem, suffixes=SUFFIXES):
    """``{kind: out_dir/<stem><suffix>}``, refused when a name exists as a folder (:func:`check_final_names`)."""
    paths = {kind: Path(out_dir) / f"{stem}{suffix}" for kind, suffix in suffixes.items()}
    check_final_names(paths.values())
    return paths


def polygons(instances):
    """{id: [[x, y], ...] closed ring} of the outer contour of every nucleus, in pixel coordinates."""
    rings = {}
    for label, box in enumerate(ndimage.find_objects(instances), start=1):
        if box is None:
            continue
        crop = np.pad((instances[box] == label).astype(np.uint8), 1)
        contours, _ = cv2.findContours(crop, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        contour = max(contours, key=cv2.contourArea)[:, 0, :].astype(float)
        contour += (box[1].start - 1, box[0].start - 1)
        if len(contour) < 3:  # a one- or two-pixel nucleus: use its pixel square
            r, c = box[0].start, box[1].start
            contour = np.array([[c, r], [c + 1, r], [c + 1, r + 1], [c, r + 1]], float)
        rings[label] = np.vstack([contour, contour[:1]]).tolist()
        rings[label] = valid_ring(rings[label])
    return rings


def valid_ring(ring):
    """``ring`` itself when it is a valid polygon; else the outline of the largest polygon of its
    repair (a contour through a one-pixel neck touches itself, which GeoJSON readers reject)."""
    from shapely.geometry import Polygon
    from shapely.validation import make_valid

    polygon = Polygon(ring)
    if polygon.is_valid:
        return ring
    parts = [g for g in _polygons(make_valid(polygon)) if g.area > 0]
    if not parts:
        return ring
    return [list(xy) for xy in max(parts, key=lambda g: g.area).exterior.coords]


def _polygons(geometry):
    """The polygons inside a (possibly nested) shapely geometry collection."""
    if geometry.geom_type == "Polygon":
        return [geometry]
    return [part for child in getattr(geometry, "geoms", []) for part in _polygons(child)]


def geojson_feature(label, ring):
    """One nucleus as a GeoJSON Feature (QuPath: File > Import objects reads it as a detection)."""
    return {
        "type": "Feature",
        "id": str(label),
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": {"objectType": "detection", "classification": {"name": "Nucleus"}, "label": label},
    }


def outline_rows(labels, above=None, below=None):
    """Nucleus pixels of ``labels`` rows with a 4-neighbour of another label (inner outlines);
    ``above``/``below``: the neighbouring label row, None at the image edge."""
    block = np.vstack([labels[:1] if above is None else above, labels, labels[-1:] if below is None else below])
    block = np.pad(block, ((0, 0), (1, 1)), mode="edge")
    centre = block[1:-1, 1:-1]
    edge = (centre != block[:-2, 1:-1]) | (centre != block[2:, 1:-1]) | (centre != block[1:-1, :-2]) | (centre != block[1:-1, 2:])
    return edge & (centre > 0)


class NucleusRecords:
    """Streams each strip's nuclei into ``<stem>.csv`` (one row each: :data:`CSV_COLUMNS`) and
    ``<stem>.geojson`` (one QuPath detection each, its measurements under the same names), for an
    image and a slide alike.

    ``mpp``: microns per pixel of the labels (None: unknown, the um columns stay empty);
    ``to_output``: labels' (x, y) -> output pixels (a slide's level 0; default: the same);
    ``downsample``: output pixels per labels pixel (pixel measurements are given in output pixels);
    ``count``: nuclei already written (a resumed slide run).
    """

    def __init__(self, table, features, stem, mpp=None, to_output=None, downsample=1.0, count=0):
        self.writer, self.features, self.stem, self.mpp = csv.writer(table), features, stem, mpp
        self.to_output, self.downsample, self.count = to_output or (lambda x, y: (x, y)), downsample, count
        if table.tell() == 0:
            self.writer.writerow(CSV_COLUMNS)
            features.write('{"type": "FeatureCollection", "features": [')

    def add(self, strip, read):
        """Measure and write the nuclei of ``strip`` (ids + ``first_id`` - 1); ``read(x, y, width,
        height)``: the RGB pixels aligned with a box of the labels (strip rows in image rows)."""
        if not strip.labels.any():
            return
        cols = np.flatnonzero(strip.labels.any(axis=0))
        left, right = int(cols[0]), int(cols[-1]) + 1
        labels = strip.labels[:, left:right]
        image = read(left, strip.top, right - left, len(labels))
        offset = strip.first_id - 1
        rings = polygons(labels)
        for m in nucleus_measurements(labels, image, self.mpp):
            label = m["id"] + offset
            x, y = self.to_output(m["centroid_x"] + left, m["centroid_y"] + strip.top)
            values = self.output_measurements(m)
            self.writer.writerow([label, f"{x:.2f}", f"{y:.2f}", *("" if v is None else f"{v:.6g}" for v in values.values())])
            ring = [list(self.to_output(px + left + 0.5, py + strip.top + 0.5)) for px, py in rings[m["id"]]]  # vertices: pixel centres
            feature = geojson_feature(label, ring)
            feature["id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"nuclei-tf/{self.stem}/{label}"))
            feature["properties"]["measurements"] = {k: v for k, v in values.items() if v is not None}
            self.features.write(("," if self.count else "") + json.dumps(feature))
            self.count += 1

    def output_measurements(self, m):
        """:data:`MEASUREMENTS` of one nucleus, pixel ones in output pixels."""
        scaled = {"area_px": m["area_px"] * self.downsample**2, "perimeter_px": m["perimeter_px"] * self.downsample}
        return {k: scaled.get(k, m[k]) for k in MEASUREMENTS}

    def close(self):
        self.features.write("]}\n")


class FinishedRows:
    """Collects strips into the full-image label map's rows and hands out those that are final."""

    def __init__(self, width):
        self.top, self.band = 0, np.zeros((0, width), np.int32)

    def add(self, strip):
        """Paste ``strip``; returns ``(top, rows)`` of the rows it made final (maybe none)."""
        needed = strip.top + len(strip.labels) - self.top
        if needed > len(self.band):
            self.band = np.vstack([self.band, np.zeros((needed - len(self.band), self.band.shape[1]), np.int32)])
        strip.paste(self.band, origin=self.top)
        done = max(strip.final - self.top, 0)
        top, rows, self.band, self.top = self.top, self.band[:done], self.band[done:], self.top + done
        return top, rows


class OverlayRows:
    """Draws outlines of finished label rows on the image rows and writes them to a PNG,
    one block behind (a block's outlines need the first row of the next block)."""

    def __init__(self, image, png):
        self.image, self.png, self.above, self.pending = image, png, None, None

    def add(self, top, rows):
        if len(rows):
            self._flush(rows[:1])
            self.pending = (top, rows)

    def _flush(self, below=None):
        if self.pending is None:
            return
        top, rows = self.pending
        block = np.array(self.image[top : top + len(rows)], copy=True)
        block[outline_rows(rows, self.above, below)] = OUTLINE
        self.png.write(block)
        self.above, self.pending = rows[-1:], None

    def close(self):
        self._flush()


def _tiles(row_blocks, width, tile=TIFF_TILE):
    """Re-cut consecutive row blocks into the row-major tiles of a tiled TIFF."""
    pending, count = [], 0
    for rows in row_blocks:
        pending.append(rows)
        count += len(rows)
        while count >= tile:
            band = np.vstack(pending)
            yield from (band[:tile, c : c + tile] for c in range(0, width, tile))
            pending, count = [band[tile:]], count - tile
    if count:
        band = np.vstack(pending)
        yield from (band[:, c : c + tile] for c in range(0, width, tile))


def write_segmentation(image, strips, out_dir, stem, mpp=None):
    """Write the four outputs of ``image`` from its instance ``strips`` as they arrive; ``mpp``: its
    microns per pixel where known (the table's um columns).

    Returns ``(paths, nuclei)``. Files are written under temporary names and renamed when all
    four are complete, so an error (bad probability map, full disk) leaves no partial output.
    """
    height, width = image.shape[:2]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = output_paths(out_dir, stem)
    partial = {kind: partial_path(path) for kind, path in paths.items()}
    try:
        with ExitStack() as files:
            records = NucleusRecords(files.enter_context(NamedFile(partial["csv"], "w", name=paths["csv"], newline="")),
                                     files.enter_context(NamedFile(partial["geojson"], "w", name=paths["geojson"])), stem, mpp)
            overlay = OverlayRows(image, files.enter_context(PngRows(partial["overlay"], width, height, name=paths["overlay"])))
            finished = FinishedRows(width)

            def label_rows():
                for strip in strips:
                    records.add(strip, lambda x, y, w, h: image[y : y + h, x : x + w])
                    top, rows = finished.add(strip)
                    overlay.add(top, rows)
                    yield rows

            with naming(paths["labels"]):  # tifffile's own writes (the others name their files)
                tifffile.imwrite(partial["labels"], data=_tiles(label_rows(), width), shape=(height, width),
                                 dtype=np.int32, tile=(TIFF_TILE, TIFF_TILE), compression="zlib")
            if finished.top != height:
                raise ValueError(f"segmentation of {stem} ended at row {finished.top} of {height}")
            overlay.close()
            records.close()
        for kind, path in partial.items():
            with naming(paths[kind]):
                path.replace(paths[kind])
    except BaseException:
        for path in partial.values():
            path.unlink(missing_ok=True)
        raise
    return paths, records.count


def write_outputs(image, instances, out_dir, stem, mpp=None):
    """Write the four output files of an image and its full instance map; returns their paths."""
    instances = np.asarray(instances, dtype=np.int32)
    strip = InstanceStrip(top=0, labels=instances, first_id=1, final=instances.shape[0])
    return write_segmentation(image, [strip], out_dir, stem, mpp)[0]
