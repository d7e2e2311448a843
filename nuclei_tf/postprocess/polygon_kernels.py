"""The compiled kernels of :mod:`~nuclei_tf.postprocess.star_polygons` (numba; compiled on first use
and cached on disk): a star-convex polygon's pixels as row spans, greedy suppression, painting.

A polygon's pixels are those whose centre lies inside it by the even-odd rule along each row: a row
``py`` crosses the edge from ``(x0, y0)`` to ``(x1, y1)`` where ``min(y0, y1) <= py < max(y0, y1)``,
and the pixels from each crossing (rounded up) to the next one (rounded up, excluded) are inside.
The edges are walked once (a scanline edge table), so a polygon costs its 32 edges plus its rows.
"""
import math

import numba
import numpy as np

from nuclei_tf.postprocess.star_polygons import KEPT, SUPPRESSED, UNDECIDED


@numba.njit(cache=True, nogil=True)
def spans(cy, cx, distances, cosines, sines, height, width, crossings, counts, out):
    """The pixels of the polygon of (cy, cx) inside the image as row spans ``out[m] = (row, start,
    stop)``, in order of row then column; returns (spans, area). ``crossings`` (rows x 32) and
    ``counts`` are scratch space."""
    n = distances.shape[0]
    reach = 0.0
    for k in range(n):
        reach = max(reach, distances[k])
    top, bottom = max(0, int(math.floor(cy - reach))), min(height - 1, int(math.ceil(cy + reach)))
    if bottom < top:
        return 0, 0
    counts[: bottom - top + 1] = 0
    for k in range(n):
        j = (k + 1) % n
        y0, y1 = cy + distances[k] * sines[k], cy + distances[j] * sines[j]
        if y0 == y1:
            continue
        x0, x1 = cx + distances[k] * cosines[k], cx + distances[j] * cosines[j]
        first, last = max(top, int(math.ceil(min(y0, y1)))), min(bottom, int(math.ceil(max(y0, y1))) - 1)
        for py in range(first, last + 1):
            value = x0 + (py - y0) / (y1 - y0) * (x1 - x0)
            r = py - top
            i = counts[r]  # insertion sort: a row crosses few edges
            while i > 0 and crossings[r, i - 1] > value:
                crossings[r, i] = crossings[r, i - 1]
                i -= 1
            crossings[r, i] = value
            counts[r] += 1
    m, area = 0, 0
    for r in range(bottom - top + 1):
        for pair in range(0, counts[r] - 1, 2):
            start = max(0, int(math.ceil(crossings[r, pair])))
            stop = min(width, int(math.ceil(crossings[r, pair + 1])))
            if stop > start:
                out[m, 0], out[m, 1], out[m, 2] = top + r, start, stop
                area += stop - start
                m += 1
    return m, area


@numba.njit(cache=True, nogil=True)
def shared(a, count_a, b, count_b):
    """Pixels two span lists (sorted by row, then column) have in common."""
    i, j, total = 0, 0, 0
    while i < count_a and j < count_b:
        if a[i, 0] < b[j, 0]:
            i += 1
        elif a[i, 0] > b[j, 0]:
            j += 1
        else:
            total += max(0, min(a[i, 2], b[j, 2]) - max(a[i, 1], b[j, 1]))
            if a[i, 2] < b[j, 2]:
                i += 1
            else:
                j += 1
    return total


@numba.njit(cache=True, nogil=True)
def suppress(ys, xs, distances, status, order, height, width, open_from, threshold, cosines, sines, cell):
    """Greedy NMS of the candidates in ``order`` (most probable first). ``status``: KEPT (decided
    context) or NEW in, KEPT / SUPPRESSED / UNDECIDED out; a polygon reaching row ``open_from``
    or below may meet unseen candidates. The kept polygon that last covered a candidate's own
    pixel is tried first: most candidates lie inside a kept nucleus and stop there (the outcome
    does not depend on the order in which kept polygons are tried)."""
    n = ys.shape[0]
    reach = int(math.ceil(distances.max())) if n else 0
    rows_max = 2 * reach + 3
    crossings, counts = np.empty((rows_max, distances.shape[1] if n else 1)), np.empty(rows_max, np.int64)
    mine = np.empty((rows_max * distances.shape[1] if n else 1, 3), np.int64)
    pool = np.empty((max(64 * rows_max, 1), 3), np.int64)
    used = 0
    offset, length, area_of = np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64)
    row0 = ys.min() if n else 0
    grid_rows, grid_cols = (ys.max() - row0) // cell + 1 if n else 1, width // cell + 1
    head = np.full(grid_rows * grid_cols, -1, np.int64)
    following = np.full(n, -1, np.int64)
    owner_top = max(0, row0 - reach)
    owner = np.full(((ys.max() + reach + 1 - owner_top) if n else 1, width), -1, np.int64)
    for i in order:
        count, area = spans(ys[i], xs[i], distances[i], cosines, sines, height, width, crossings, counts, mine)
        if area == 0:
            status[i] = SUPPRESSED  # a polygon of no pixel is no nucleus
            continue
        if status[i] != KEPT:
            j = owner[ys[i] - owner_top, xs[i]]
            suppressed = j >= 0 and shared(mine, count, pool[offset[j]:], length[j]) > threshold * min(area, area_of[j])
            undecided = mine[count - 1, 0] >= open_from
            gy, gx = (ys[i] - row0) // cell, xs[i] // cell
            for cy in range(max(0, gy - 2), min(grid_rows, gy + 3)):
                for cx in range(max(0, gx - 2), min(grid_cols, gx + 3)):
                    j = head[cy * grid_cols + cx]
                    while j >= 0 and not suppressed:
                        if status[j] == KEPT or not undecided:
                            if shared(mine, count, pool[offset[j]:], length[j]) > threshold * min(area, area_of[j]):
                                if status[j] == KEPT:
                                    suppressed = True
                                else:
                                    undecided = True
                        j = following[j]
            if suppressed:
                status[i] = SUPPRESSED
                continue
            status[i] = UNDECIDED if undecided else KEPT
        if used + count > pool.shape[0]:
            grown = np.empty((2 * (used + count), 3), np.int64)
            grown[:used] = pool[:used]
            pool = grown
        pool[used : used + count] = mine[:count]
        offset[i], length[i], area_of[i], used = used, count, area, used + count
        key = ((ys[i] - row0) // cell) * grid_cols + xs[i] // cell
        following[i], head[key] = head[key], i
        if status[i] == KEPT:
            for m in range(count):
                owner[mine[m, 0] - owner_top, mine[m, 1] : mine[m, 2]] = i
    return status


@numba.njit(cache=True, nogil=True)
def paint(ys, xs, distances, order, labels, top, height, width, cosines, sines):
    """Write ``order``'s polygons (least probable first) as their index + 1 into ``labels``,
    whose first row is image row ``top``: the most probable covering polygon wins a pixel."""
    reach = int(math.ceil(distances.max())) if ys.shape[0] else 0
    rows_max = 2 * reach + 3
    crossings, counts = np.empty((rows_max, distances.shape[1] if ys.shape[0] else 1)), np.empty(rows_max, np.int64)
    mine = np.empty((rows_max * (distances.shape[1] if ys.shape[0] else 1), 3), np.int64)
    for i in order:
        count, _ = spans(ys[i], xs[i], distances[i], cosines, sines, height, width, crossings, counts, mine)
        for m in range(count):
            y = mine[m, 0] - top
            if 0 <= y < labels.shape[0]:
                labels[y, mine[m, 1] : mine[m, 2]] = i + 1
