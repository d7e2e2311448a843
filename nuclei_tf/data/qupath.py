"""Reading QuPath GeoJSON annotations (File > Export objects as GeoJSON, or a script's
``GsonTools`` output): polygons with holes, MultiPolygons and classifications, in the image's
full-resolution pixel coordinates (QuPath's: pixel i spans [i, i + 1)).

A file holds a ``FeatureCollection``, a bare JSON list of features (QuPath 0.2's export) or one
``Feature``. Every feature becomes an :class:`Annotation`: its polygons as lists of rings
(exterior first, then holes), its classification name (``properties.classification.name``, or a
plain string; None when unclassified) and its own ``name``. Points and lines outline no area:
they are counted apart, never guessed into nuclei.
"""
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nuclei_tf.data.errors import DataError


@dataclass(eq=False)
class Annotation:
    """One QuPath object: ``polygons`` = [[exterior (N, 2) float array, hole, ...], ...] in (x, y)."""

    polygons: list = field(repr=False)
    classification: str = None
    name: str = None
    index: int = 0  #: position in the file (0-based), for messages

    @property
    def bounds(self):
        """(x0, y0, x1, y1) of the exteriors."""
        points = np.vstack([rings[0] for rings in self.polygons])
        return (*points.min(axis=0), *points.max(axis=0))

    @property
    def area(self):
        """Area in pixels^2 (shoelace: exteriors minus holes)."""
        return sum(_ring_area(rings[0]) - sum(_ring_area(hole) for hole in rings[1:]) for rings in self.polygons)


def _ring_area(ring):
    x, y = ring[:, 0], ring[:, 1]
    return abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2


def read_qupath_geojson(path):
    """``(annotations, skipped)``: every polygon feature of ``path`` as an :class:`Annotation`, and
    ``{geometry type: count}`` of the features without an area (points, lines)."""
    path = Path(path)
    try:
        document = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(path, f"is not valid JSON ({exc})") from None
    if isinstance(document, dict) and document.get("type") == "FeatureCollection":
        features = document.get("features")
    elif isinstance(document, dict) and document.get("type") == "Feature":
        features = [document]
    else:
        features = document
    if not isinstance(features, list):
        raise DataError(path, "is not GeoJSON features (a FeatureCollection, a list of Features or one Feature)")
    annotations, skipped = [], {}
    for index, feature in enumerate(features):
        if not isinstance(feature, dict) or not isinstance(feature.get("geometry"), dict):
            raise DataError(path, f"feature {index} has no geometry object")
        polygons = _polygons(feature["geometry"], path, index)
        if not polygons:
            kind = feature["geometry"].get("type")
            skipped[kind] = skipped.get(kind, 0) + 1
            continue
        properties = feature.get("properties") or {}
        annotations.append(Annotation(polygons, _classification(properties), properties.get("name"), index))
    return annotations, skipped


def _classification(properties):
    value = properties.get("classification")
    if isinstance(value, dict):
        return value.get("name")
    return value if isinstance(value, str) else None


def _polygons(geometry, path, index):
    """The polygons of a geometry as lists of (N, 2) rings; [] for points and lines."""
    kind, coordinates = geometry.get("type"), geometry.get("coordinates")
    if kind == "GeometryCollection":
        return [p for part in geometry.get("geometries", []) for p in _polygons(part, path, index)]
    if kind in ("Point", "MultiPoint", "LineString", "MultiLineString"):
        return []
    if kind not in ("Polygon", "MultiPolygon"):
        raise DataError(path, f"feature {index}: unknown geometry type {kind!r}")
    parts = [coordinates] if kind == "Polygon" else coordinates
    try:
        polygons = [[np.asarray(ring, float)[:, :2] for ring in part] for part in parts]
    except (TypeError, ValueError, IndexError):
        raise DataError(path, f"feature {index}: {kind} coordinates are not lists of [x, y] points") from None
    for rings in polygons:
        if not rings or any(len(ring) < 3 or not np.isfinite(ring).all() for ring in rings):
            raise DataError(path, f"feature {index}: a {kind} ring has fewer than 3 finite points")
    return polygons
