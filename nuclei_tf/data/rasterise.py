"""Polygons -> pixels by the pixel-centre rule: pixel (r, c), which covers [c, c + 1) x [r, r + 1),
belongs to a polygon when its centre (c + 0.5, r + 0.5) lies inside it under the even-odd rule
(so holes are outside), with a half-open crossing test: a centre exactly on a left edge is in, on
a right edge out, so two polygons sharing an edge never share a pixel. A polygon with whole-pixel
corners covers exactly the pixels it outlines.
"""
import numpy as np


def polygon_mask(rings, shape):
    """Bool ``shape`` mask of the pixels whose centres lie inside ``rings`` (exterior and holes,
    (N, 2) arrays of (x, y) in pixel units, closed or not)."""
    mask = np.zeros(shape, bool)
    window, inside = polygon_window(rings, shape)
    mask[window] = inside
    return mask


def polygon_window(rings, shape):
    """``(window, inside)``: the slices of a ``shape`` grid around ``rings`` and the bool mask of
    the pixels inside them there, scan line by scan line (a nucleus costs its box, not the grid)."""
    height, width = shape
    edges = np.vstack([np.hstack([ring, np.roll(ring, -1, axis=0)]) for ring in rings])  # x0, y0, x1, y1
    edges = edges[edges[:, 1] != edges[:, 3]]  # horizontal edges cross no scan line
    if not len(edges):
        return (slice(0, 0), slice(0, 0)), np.zeros((0, 0), bool)
    top = min(max(int(np.floor(edges[:, [1, 3]].min() - 0.5)), 0), height)
    bottom = max(min(int(np.ceil(edges[:, [1, 3]].max() - 0.5)) + 1, height), top)
    left = min(max(int(np.floor(edges[:, [0, 2]].min() - 0.5)), 0), width)
    right = max(min(int(np.ceil(edges[:, [0, 2]].max() - 0.5)) + 1, width), left)
    inside = np.zeros((bottom - top, right - left), bool)
    x0, y0, x1, y1 = edges.T
    low, high = np.minimum(y0, y1), np.maximum(y0, y1)
    for row in range(top, bottom):
        y = row + 0.5
        crossing = (low <= y) & (y < high)
        if not crossing.any():
            continue
        xs = np.sort(x0[crossing] + (y - y0[crossing]) * (x1[crossing] - x0[crossing]) / (y1[crossing] - y0[crossing]))
        for start, stop in zip(xs[0::2], xs[1::2]):  # inside from start (in) to stop (out): start <= c + 0.5 < stop
            first, last = max(int(np.ceil(start - 0.5)), left), min(int(np.ceil(stop - 0.5)), right)
            inside[row - top, max(first - left, 0) : max(last - left, 0)] = True
    return (slice(top, bottom), slice(left, right)), inside


def rasterise_instances(annotations, shape, to_pixels):
    """int32 instance map of ``annotations`` (each a nucleus, ids 1..N in their order) on a
    ``shape`` grid; ``to_pixels(points)`` maps (N, 2) annotation coordinates onto the grid's.
    Where nuclei overlap the smaller one keeps the pixels (larger ones are drawn first), so a
    nucleus drawn inside another is not lost; a MultiPolygon's parts are one nucleus."""
    instances = np.zeros(shape, np.int32)
    order = sorted(range(len(annotations)), key=lambda i: -annotations[i].area)
    for i in order:
        for rings in annotations[i].polygons:
            window, inside = polygon_window([to_pixels(ring) for ring in rings], shape)
            instances[window][inside] = i + 1
    return instances
