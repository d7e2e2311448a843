"""QuPath annotations on an image or a slide -> training tiles in the ``ROOT/images`` +
``ROOT/labels`` layout (:mod:`nuclei_tf.data.folder`) at a model's resolution.

1. The annotated area: every annotation classified ``region_class`` (default "Region"), whose
   every nucleus must be annotated; on a plain image without one, the whole image. A slide needs
   at least one (its unannotated tissue would teach "no nucleus here").
2. Each region is read at ``mpp`` (:class:`~nuclei_tf.data.slide.ResampledView`, as ``predict``
   reads slides) and its nuclei (the other polygons, optionally only some classes) rasterised
   straight onto that grid (:mod:`nuclei_tf.data.rasterise`: no label resampling). Pixels of the
   region's box outside a non-rectangular region are white with no nucleus.
3. The region is cut into ``tile`` px tiles named ``<stem>_r<k>_x<X>_y<Y>`` (level-0 origin),
   written as PNG + uint16/int32 TIFF labels, with ``classes.csv`` (tile, id, classification) and
   ``dataset.json`` (``mpp``).
"""
import csv
import json
import os
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from nuclei_tf.data.errors import DataError
from nuclei_tf.data.folder import DATASET_FILE
from nuclei_tf.data.labels import relabel_contiguous
from nuclei_tf.data.qupath import Annotation, read_qupath_geojson
from nuclei_tf.data.rasterise import polygon_mask, rasterise_instances
from nuclei_tf.data.slide import ResampledView, open_slide


def export_annotated_tiles(image_path, geojson_path, root, mpp, image_mpp=None, tile=512, region_class="Region",
                           classes=None):
    """Write the tiles of ``image_path``'s annotated regions into ``root``; returns a summary dict
    (regions, tiles, nuclei, left out by class, skipped non-polygon features)."""
    root, stem = Path(root), Path(image_path).stem
    annotations, skipped = read_qupath_geojson(geojson_path)
    is_region = [region_class in (a.classification, a.name) for a in annotations]
    regions = [a for a, region in zip(annotations, is_region) if region]
    candidates = [a for a, region in zip(annotations, is_region) if not region]
    nuclei = [a for a in candidates if classes is None or a.classification in classes]
    with open_slide(image_path) as slide:
        if not regions:
            if slide.is_whole_slide:
                raise DataError(geojson_path, f"has no annotation classified '{region_class}': on a whole slide, outline "
                                              "the area(s) whose every nucleus is annotated with such annotations")
            width, height = slide.dimensions
            regions = [Annotation([[np.array([[0, 0], [width, 0], [width, height], [0, height]], float)]], region_class)]
        views = [region_view(slide, region, mpp, image_mpp, image_path) for region in regions]  # all readable first
        check_dataset_mpp(root, mpp)
        for sub in ("images", "labels"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        tiles, written_nuclei, rows = 0, 0, []
        for k, (region, view) in enumerate(zip(regions, views)):
            to_grid = lambda points, v=view: (points - np.asarray(v.origin, float)) / v.downsample  # noqa: E731
            inside = np.zeros(view.shape, bool)
            for rings in region.polygons:
                inside |= polygon_mask([to_grid(ring) for ring in rings], view.shape)
            x0, y0, x1, y1 = view.roi[0], view.roi[1], view.roi[0] + view.roi[2], view.roi[1] + view.roi[3]
            near = [a for a in nuclei if a.bounds[0] < x1 and a.bounds[2] > x0 and a.bounds[1] < y1 and a.bounds[3] > y0]
            instances = rasterise_instances(near, view.shape, to_grid)
            instances[~inside] = 0
            pixels = np.array(view.read(0, 0, view.shape[1], view.shape[0]))  # a copy: painted white outside the region
            pixels[~inside] = 255
            for top in range(0, view.shape[0], tile):
                for left in range(0, view.shape[1], tile):
                    if not inside[top : top + tile, left : left + tile].any():
                        continue
                    lx, ly = (int(round(v)) for v in view.to_level0(left, top))
                    name = f"{stem}_r{k + 1}_x{lx}_y{ly}"
                    crop = instances[top : top + tile, left : left + tile]
                    originals = np.unique(crop[crop > 0])
                    labels = relabel_contiguous(crop)
                    write_tile(root, name, pixels[top : top + tile, left : left + tile], labels)
                    rows += [(name, i + 1, near[old - 1].classification or "") for i, old in enumerate(originals)]
                    tiles += 1
                    written_nuclei += len(originals)
    write_classes(root / "classes.csv", rows)
    return {"regions": len(regions), "tiles": tiles, "nuclei": written_nuclei, "nuclei_annotations": len(nuclei),
            "left_out_by_class": len(candidates) - len(nuclei), "skipped": skipped}


def region_view(slide, region, mpp, image_mpp, image_path):
    """The slide's view at ``mpp`` of a region's level-0 bounding box (whole pixels, inside the slide);
    an image without a recorded resolution needs ``image_mpp`` (no guess)."""
    width, height = slide.dimensions
    bx0, by0, bx1, by1 = region.bounds
    x0, y0 = max(int(np.floor(bx0)), 0), max(int(np.floor(by0)), 0)
    x1, y1 = min(int(np.ceil(bx1)), width), min(int(np.ceil(by1)), height)
    if x1 <= x0 or y1 <= y0:
        raise DataError(image_path, f"region annotation {region.index} lies outside the image's {width} x {height} px")
    view = ResampledView(slide, mpp, slide_mpp=image_mpp, roi=(x0, y0, x1 - x0, y1 - y0))
    if view.assumed_mpp:
        raise DataError(image_path, "records no resolution: pass --mpp (its microns per pixel), so that the tiles "
                                    f"are brought to {mpp} um/px")
    return view


def check_dataset_mpp(root, mpp):
    """Write ``root/dataset.json`` with ``mpp``, or check that the one there says the same."""
    path = root / DATASET_FILE
    if path.is_file():
        stated = json.loads(path.read_text()).get("mpp")
        if stated is None or abs(stated / mpp - 1) > 1e-6:
            raise DataError(path, f"states mpp {stated}: these tiles would be at {mpp} um/px; use another --out")
        return
    root.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"mpp": mpp, "labels": "instances"}) + "\n")


def write_tile(root, name, pixels, labels):
    """``images/<name>.png`` and ``labels/<name>.tif``, each written whole under a temporary name first."""
    image_path, label_path = root / "images" / f"{name}.png", root / "labels" / f"{name}.tif"
    dtype = np.uint16 if labels.max(initial=0) <= np.iinfo(np.uint16).max else np.int32
    partial_image, partial_label = image_path.with_name(image_path.name + ".partial"), label_path.with_name(label_path.name + ".partial")
    Image.fromarray(pixels).save(partial_image, format="PNG")
    tifffile.imwrite(partial_label, labels.astype(dtype), compression="zlib")
    os.replace(partial_image, image_path)
    os.replace(partial_label, label_path)


def write_classes(path, rows):
    """``classes.csv``: each tile nucleus' classification, added to (and replacing the tiles of) an existing table."""
    kept = []
    if path.is_file():
        names = {row[0] for row in rows}
        with open(path, newline="") as handle:
            kept = [tuple(r.values()) for r in csv.DictReader(handle) if r["tile"] not in names]
    with open(path.with_name(path.name + ".partial"), "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["tile", "id", "classification"])
        writer.writerows(kept + rows)
    os.replace(path.with_name(path.name + ".partial"), path)
