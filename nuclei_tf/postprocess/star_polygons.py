"""Post-processing of the rays head (StarDist, Schmidt et al. 2018, MICCAI, section 2): polygons
and their non-maximum suppression.

Every pixel whose object probability exceeds ``threshold`` proposes the star-convex polygon of its
32 ray distances (clipped to [0, :data:`MAX_RAY`] px). Greedy non-maximum suppression in order of
decreasing probability (ties: by row, then column) keeps a polygon unless it overlaps an already
kept one by more than ``nms_threshold`` of the smaller polygon's area. Each pixel then belongs to
the most probable kept polygon that covers it, and nuclei smaller than ``min_size`` px are dropped.
Polygons are rasterised by their pixel centres (even-odd rule along rows) and overlaps are counted
in those pixels, so a nucleus is exactly its polygon as drawn (here StarDist intersects the
polygons exactly and draws them afterwards).

Strip by strip with the whole image's nuclei (:func:`polygon_strips`): a polygon reaches at most
:data:`MAX_RAY` px from its pixel, so the candidates a window has not yet seen (rows below it)
can only touch polygons reaching within :data:`MAX_RAY` rows of its lower edge. Such a polygon,
and any polygon that an undecided more probable one might suppress, stays undecided unless a
kept one already suppresses it, and is decided again with the next rows; kept polygons stay as
context while later candidates could overlap them. A nucleus is emitted once no undecided or
unseen polygon can reach its rows.
"""
import numpy as np

from nuclei_tf.data.star_targets import N_RAYS, RAY_DISTANCES, ray_angles
from nuclei_tf.postprocess.strips import InstanceStrip, row_pieces

#: the longest ray distance used (px): beyond StarDist's 40x nuclei (radii up to about 40 px)
MAX_RAY = 64
NEW, KEPT, SUPPRESSED, UNDECIDED = 0, 1, 2, 3

def _kernels():
    """The compiled kernels, imported on first use (numba's import and compilation cost nothing
    to models of the other heads)."""
    from nuclei_tf.postprocess import polygon_kernels

    return polygon_kernels


def _directions():
    angles = ray_angles(N_RAYS)
    return np.cos(angles), np.sin(angles)


def candidates_of(rows, top, threshold):
    """The candidates of model output rows (rows x W x 33, image rows ``top``..): dict of int64 ``ys``,
    ``xs``, float32 ``probabilities`` and float64 clipped ``distances`` (n x 32)."""
    rows = np.asarray(rows)
    probability = rows[..., -1]
    r, c = np.nonzero(probability > threshold)
    distances = rows[r, c, RAY_DISTANCES].astype(np.float64)
    if not (np.isfinite(probability).all() and np.isfinite(distances).all()):
        raise ValueError("rays outputs hold NaN or Inf")
    return {"ys": r.astype(np.int64) + top, "xs": c.astype(np.int64),
            "probabilities": probability[r, c].astype(np.float32), "distances": np.clip(distances, 0.0, MAX_RAY)}


def _join(*parts):
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}


def _take(part, index):
    return {key: value[index] for key, value in part.items()}


def _priority(part):
    """Indices from the most probable candidate down (ties: by row, then column)."""
    return np.lexsort((part["xs"], part["ys"], -part["probabilities"]))


def _reach(part):
    return np.ceil(part["distances"].max(axis=1, initial=0.0)).astype(np.int64)


def polygon_strips(blocks, height, width, settings, strip_rows=1024):
    """Yield :class:`~nuclei_tf.postprocess.strips.InstanceStrip` s of rays outputs ``blocks``
    ``(top, rows x width x 33)`` given in order: the nuclei of :func:`polygon_instances` on the
    whole map, decided ``strip_rows`` new rows at a time (see the module docstring)."""
    kernels, (cosines, sines) = _kernels(), _directions()
    empty = candidates_of(np.zeros((0, width, N_RAYS + 1), np.float32), 0, settings.threshold)
    carried, status, emitted = empty, np.zeros(0, np.int8), np.zeros(0, bool)
    pending, received, attempted, next_id = [], 0, 0, 1
    for start, rows in row_pieces(blocks, strip_rows):
        if start != received or rows.shape[1:] != (width, N_RAYS + 1):
            raise ValueError(f"rays outputs must arrive in order as rows x {width} x {N_RAYS + 1}: expected row "
                             f"{received}, got row {start} of shape {rows.shape}")
        pending.append(candidates_of(rows, start, settings.threshold))
        received += len(rows)
        if received - attempted < strip_rows and received < height:
            continue
        attempted = received
        part = _join(carried, *pending)
        pending = []
        count = len(carried["ys"])
        status = np.concatenate([status, np.zeros(len(part["ys"]) - count, np.int8)])
        emitted = np.concatenate([emitted, np.zeros(len(part["ys"]) - count, bool)])
        open_from = height + 2 * MAX_RAY if received == height else received - MAX_RAY  # rows unseen candidates reach
        kernels.suppress(part["ys"], part["xs"], part["distances"], status, _priority(part), height, width,
                         open_from, settings.nms_threshold, cosines, sines, MAX_RAY)
        reach = _reach(part)
        undecided = status == UNDECIDED
        unseen = min(received, part["ys"][undecided].min(initial=received))  # the first row of a candidate to come
        done = received == height
        final_rows = height if done else unseen - MAX_RAY
        kept = status == KEPT
        ready = kept & ~emitted & (done | (part["ys"] + reach < final_rows))
        if ready.any() or done:
            strip = (_emit(part, kept, ready, reach, height, width, settings, next_id, kernels, cosines, sines) if ready.any()
                     else InstanceStrip(height, np.zeros((0, width), np.int32), next_id, height))
            next_id += strip.count
            emitted |= ready
            waiting = kept & ~emitted
            strip.final = int(max(0, min(final_rows, (part["ys"] - reach)[waiting].min(initial=final_rows))))
            yield strip
        waiting = kept & ~emitted
        context_from = min(unseen - MAX_RAY, (part["ys"] - reach)[waiting].min(initial=unseen))
        keep = undecided | (kept & (part["ys"] + reach >= context_from))
        carried, status, emitted = _take(part, keep), np.where(undecided[keep], NEW, status[keep]).astype(np.int8), emitted[keep]
    if received != height:
        raise ValueError(f"rays outputs ended at row {received} of {height}")


def _emit(part, kept, ready, reach, height, width, settings, first_id, kernels, cosines, sines):
    """The strip of the ``ready`` nuclei: every kept polygon painted over their rows, least
    probable first, then the ready ones of at least ``settings.min_size`` px, numbered from 1."""
    top = int((part["ys"] - reach)[ready].min())
    bottom = int((part["ys"] + reach)[ready].max()) + 1
    top, bottom = max(top, 0), min(bottom, height)
    near = kept & (part["ys"] + reach >= top) & (part["ys"] - reach < bottom)
    order = _priority(part)[::-1]
    order = order[near[order]]
    painted = np.zeros((bottom - top, width), np.int64)
    kernels.paint(part["ys"], part["xs"], part["distances"], order, painted, top, height, width, cosines, sines)
    areas = np.bincount(painted.ravel(), minlength=len(part["ys"]) + 1)[1:]
    chosen = ready & (areas >= settings.min_size)
    ids = np.zeros(len(part["ys"]) + 1, np.int32)
    rank = np.flatnonzero(chosen)
    rank = rank[np.lexsort((part["xs"][rank], part["ys"][rank]))]  # nuclei numbered by their pixel, top to bottom
    ids[rank + 1] = np.arange(1, len(rank) + 1, dtype=np.int32)
    return InstanceStrip(top, ids[painted], first_id, top)


def polygon_instances(outputs, settings):
    """Int32 instances (ids 1..N) of H x W x 33 rays outputs under ``settings`` (threshold,
    nms_threshold, min_size)."""
    outputs = np.asarray(outputs)
    if outputs.ndim != 3 or outputs.shape[-1] != N_RAYS + 1:
        raise ValueError(f"split 'polygons' needs a rays model's outputs (H x W x {N_RAYS + 1}), got shape {outputs.shape}")
    instances = np.zeros(outputs.shape[:2], np.int32)
    for strip in polygon_strips([(0, outputs)], outputs.shape[0], outputs.shape[1], settings, max(outputs.shape[0], 1)):
        strip.paste(instances)
    return instances
