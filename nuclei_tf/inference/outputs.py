"""Writing a segmentation: ``<stem>.labels.tif`` (int32 instances), ``<stem>.overlay.png``
(outlines on the image), ``<stem>.geojson`` (nucleus polygons QuPath imports as detections)
and ``<stem>.csv`` (one row per nucleus: id, area, centroid)."""
import csv
import json

import cv2
import numpy as np
import tifffile
from PIL import Image
from scipy import ndimage

OUTLINE = (0, 255, 0)


def nucleus_table(instances, rows_per_chunk=1024):
    """Rows (id, area_px, centroid_x, centroid_y) of every nucleus, accumulated in row chunks
    so a whole slide needs no full-size coordinate arrays."""
    size = int(instances.max(initial=0)) + 1
    areas, sum_r, sum_c = np.zeros(size), np.zeros(size), np.zeros(size)
    columns = np.arange(instances.shape[1], dtype=np.float64)
    for start in range(0, instances.shape[0], rows_per_chunk):
        chunk = instances[start : start + rows_per_chunk]
        flat = chunk.ravel()
        row_index = np.repeat(np.arange(start, start + chunk.shape[0], dtype=np.float64), chunk.shape[1])
        areas += np.bincount(flat, minlength=size)
        sum_r += np.bincount(flat, weights=row_index, minlength=size)
        sum_c += np.bincount(flat, weights=np.tile(columns, chunk.shape[0]), minlength=size)
    ids = np.nonzero(areas[1:])[0] + 1
    return [(int(i), int(areas[i]), sum_c[i] / areas[i], sum_r[i] / areas[i]) for i in ids]


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
    return rings


def geojson(instances):
    """A GeoJSON FeatureCollection of nucleus polygons (QuPath: File > Import objects)."""
    features = [
        {
            "type": "Feature",
            "id": str(label),
            "geometry": {"type": "Polygon", "coordinates": [ring]},
            "properties": {"objectType": "detection", "classification": {"name": "Nucleus"}, "label": label},
        }
        for label, ring in polygons(instances).items()
    ]
    return {"type": "FeatureCollection", "features": features}


def outlines(instances, rows_per_chunk=1024):
    """Boolean map of nucleus pixels with a 4-neighbour of another label (inner outlines),
    computed in row chunks so whole slides need no extra full-size label arrays."""
    height = instances.shape[0]
    out = np.zeros(instances.shape, dtype=bool)
    for start in range(0, height, rows_per_chunk):
        stop = min(start + rows_per_chunk, height)
        lo, hi = max(start - 1, 0), min(stop + 1, height)
        block = np.pad(instances[lo:hi], 1, mode="edge")
        centre = block[1:-1, 1:-1]
        edge = (centre != block[:-2, 1:-1]) | (centre != block[2:, 1:-1]) | (centre != block[1:-1, :-2]) | (centre != block[1:-1, 2:])
        out[start:stop] = (edge & (centre > 0))[start - lo : start - lo + stop - start]
    return out


def overlay(image, instances):
    """The RGB image with every nucleus outline drawn in green."""
    out = np.array(image, copy=True)
    out[outlines(instances)] = OUTLINE
    return out


def write_outputs(image, instances, out_dir, stem):
    """Write the four output files for one image; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "labels": out_dir / f"{stem}.labels.tif",
        "overlay": out_dir / f"{stem}.overlay.png",
        "geojson": out_dir / f"{stem}.geojson",
        "csv": out_dir / f"{stem}.csv",
    }
    tifffile.imwrite(paths["labels"], instances.astype(np.int32), compression="zlib")
    Image.fromarray(overlay(image, instances)).save(paths["overlay"])
    paths["geojson"].write_text(json.dumps(geojson(instances)))
    with open(paths["csv"], "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "area_px", "centroid_x", "centroid_y"])
        writer.writerows((i, a, f"{x:.2f}", f"{y:.2f}") for i, a, x, y in nucleus_table(instances))
    return paths
