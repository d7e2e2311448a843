"""MoNuSeg's Aperio-style XML annotations rasterised into an instance map.

Each ``Annotation/Regions/Region`` is one nucleus, its ``Vertices/Vertex X= Y=`` the
polygon outline in pixel coordinates (X = column, Y = row). Rules (Kumar et al. 2017
give none, so these are ours, applied deterministically):

* vertices outside the image are clipped to its border;
* a Region with fewer than 3 vertices, or whose polygon covers no pixel centre, is skipped;
* overlapping Regions: larger nuclei are painted first, so a small nucleus lying on a
  larger one stays whole; a Region left with no pixel of its own is dropped;
* ids are contiguous 1..N in XML order of the kept Regions.

Skipped and dropped Regions are counted in one warning per file.
"""
import warnings
import xml.etree.ElementTree as ET

import numpy as np
from skimage.draw import polygon as polygon_pixels

from nuclei_tf.data.errors import DataError


def parse_regions(path):
    """The vertex arrays (K x 2, columns X, Y) of every Region in the XML file."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise DataError(path, f"unparsable XML ({exc})") from None
    except OSError as exc:
        raise DataError(path, f"cannot read XML ({exc.strerror or exc})") from None
    regions = []
    for region in root.iter("Region"):
        try:
            vertices = [(float(v.attrib["X"]), float(v.attrib["Y"])) for v in region.iter("Vertex")]
        except (KeyError, ValueError) as exc:
            raise DataError(path, f"Region {region.get('Id')} has a malformed Vertex ({exc})") from None
        regions.append(np.asarray(vertices, dtype=np.float64).reshape(-1, 2))
    return regions


def rasterise_xml(path, shape):
    """An int32 instance map of the given (H, W) shape from a MoNuSeg XML file."""
    height, width = shape[:2]
    painted = []  # (area, xml_order, rows, cols)
    skipped = 0
    for order, vertices in enumerate(parse_regions(path)):
        if len(vertices) < 3:
            skipped += 1
            continue
        cols = np.clip(vertices[:, 0], 0, width - 1)
        rows = np.clip(vertices[:, 1], 0, height - 1)
        rr, cc = polygon_pixels(rows, cols, shape=(height, width))
        if rr.size == 0:
            skipped += 1
            continue
        painted.append((rr.size, order, rr, cc))

    owner = np.full((height, width), -1, dtype=np.int64)
    for _, order, rr, cc in sorted(painted, key=lambda item: (-item[0], item[1])):
        owner[rr, cc] = order
    kept = np.unique(owner[owner >= 0])
    dropped = len(painted) - kept.size
    instances = np.zeros((height, width), dtype=np.int32)
    instances[owner >= 0] = np.searchsorted(kept, owner[owner >= 0]) + 1
    if skipped or dropped:
        warnings.warn(
            f"{path}: skipped {skipped} Region(s) with < 3 vertices or zero area, "
            f"dropped {dropped} Region(s) entirely covered by other nuclei",
            stacklevel=2,
        )
    return instances
