"""Post-processing a probability map that arrives in blocks of rows, for whole slides.

:func:`instance_strips` gives the same nuclei as
:func:`~nuclei_tf.postprocess.instances.probability_to_instances` on the whole map (ids
may be numbered in another order) while holding only a window of rows as a one-byte mask
(boolean, or for split "markers" the uint8 codes of
:func:`~nuclei_tf.postprocess.instances.binarise`: nucleus and marker pixels).

Why it is exact: each window is thresholded and hole-filled; a nucleus cluster (an
8-connected component of the filled mask) is emitted by the first window that holds it
with at least :data:`HALO` rows of clearance from the window's cut edges. Such a cluster
and its holes are identical in the window and in the whole image (the outer boundary of a
4-connected hole is 8-connected, so a hole lies inside its cluster), and splitting and size
filtering then work on crops of single components grown by
:data:`~nuclei_tf.postprocess.watershed.CROP_MARGIN` < ``HALO`` px, which the clearance
keeps inside the window (markers are decided pixel by pixel, so a cluster's are the same
too). A cluster is owned by the window where its top row lies between
the rows already decided and the new decision line, so none is emitted twice.
"""
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from nuclei_tf.data.labels import binary_to_instances
from nuclei_tf.postprocess.instances import binarise, filled_mask_to_instances, markers_of
from nuclei_tf.postprocess.morphology import fill_holes
from nuclei_tf.postprocess.watershed import CROP_MARGIN

#: rows of clearance a cluster needs from a window's cut edges to be emitted exactly
HALO = CROP_MARGIN + 1
#: pixels of the new rows that trigger a window (rows x width)
STRIP_PIXELS = 1 << 21


def strip_rows_for(width, pixels=STRIP_PIXELS):
    """Rows per strip for an image ``width`` px wide (at least 64)."""
    return max(64, pixels // max(width, 1))


@dataclass
class InstanceStrip:
    """Nuclei emitted by one window: ``labels`` (int32, local ids 1..n, zero elsewhere) covers
    image rows ``top`` .. ``top + len(labels)``; image id = local id + ``first_id`` - 1. Rows
    above ``final`` are complete: no later strip puts a nucleus there."""

    top: int
    labels: np.ndarray
    first_id: int
    final: int
    resume: dict = None  #: ``instance_strips(..., resume=...)`` continues right after this strip

    @property
    def count(self):
        return int(self.labels.max(initial=0))

    def paste(self, target, origin=0):
        """Write these nuclei (image ids) into ``target``, whose first row is image row ``origin``
        (rows above ``origin`` must be final already, so hold none of them)."""
        skip = max(origin - self.top, 0)
        labels = self.labels[skip:]
        rows = target[self.top + skip - origin : self.top + skip - origin + len(labels)]
        inside = labels > 0
        rows[inside] = labels[inside] + (self.first_id - 1)


def _window(mask, top, done, height, settings):
    """Decide the clusters of the window ``mask`` (image rows top..) whose top row is >= done.

    Returns ``(new_done, local_labels)``: every cluster starting in [done, new_done) is emitted
    in ``local_labels``; ``new_done == done`` means the window must grow first.
    """
    bottom = top + len(mask)
    filled = fill_holes(mask) if settings.fill else mask
    clusters = binary_to_instances(filled, connectivity=2)
    boxes = ndimage.find_objects(clusters)
    starts = np.array([box[0].start + top if box else bottom for box in boxes], dtype=np.int64)
    stops = np.array([box[0].stop + top if box else bottom for box in boxes], dtype=np.int64)
    incomplete = (starts >= done) & (stops + HALO > bottom) & (bottom < height)
    new_done = int(starts[incomplete].min()) if incomplete.any() else bottom
    if new_done <= done:
        return done, None
    owned = np.concatenate([[False], (starts >= done) & (starts < new_done)])[clusters]
    del clusters  # the split's own component labels take its place
    return new_done, filled_mask_to_instances(owned, settings, markers_of(mask, settings))


def row_pieces(blocks, step):
    """``(top, rows)`` blocks cut at the image rows that are multiples of ``step``: the cuts
    depend only on the rows, so a run resumed mid-block sees the same pieces after its start."""
    for top, rows in blocks:
        offset = 0
        while offset < len(rows):
            stop = min(len(rows), ((top + offset) // step + 1) * step - top)
            yield top + offset, rows[offset:stop]
            offset = stop


def instance_strips(blocks, height, settings, strip_rows=1024, resume=None):
    """Yield :class:`InstanceStrip` for probability ``blocks`` ``(top, rows)`` given in order.

    ``blocks`` must tile rows 0..``height`` without gaps (rows of H x W maps, or of H x W x C
    maps as :func:`~nuclei_tf.postprocess.instances.binarise` takes); a window is processed each
    time ``strip_rows`` new rows have arrived (and at the end). Memory: one window of bytes
    and its post-processing temporaries (7 bytes per window pixel, ``benchmarks/bench_window_memory.py``);
    a window holds ``strip_rows`` new rows plus those of the clusters still crossing its lower
    edge (on dense tissue 40,000 px wide: 309 rows median, 633 largest, for 64 new rows).

    ``resume``: a strip's ``resume`` dict; ``blocks`` then start at its row ``"row"`` (cut
    there, block boundaries unchanged after it), and the strips that follow equal those of
    an uninterrupted run.
    """
    if strip_rows <= HALO:
        raise ValueError(f"strip_rows must exceed {HALO}, got {strip_rows}")
    state = resume or {"row": 0, "done": 0, "next_id": 1, "attempted": 0}
    pending, top, done, next_id, attempted = [], state["row"], state["done"], state["next_id"], state["attempted"]
    received = top
    for start, rows in row_pieces(blocks, strip_rows):
        if start != received:
            raise ValueError(f"probability rows must arrive in order: expected row {received}, got {start}")
        pending.append(binarise(rows, settings))
        received += len(rows)
        if received - attempted < strip_rows and received < height:
            continue
        attempted = received
        mask = np.concatenate(pending) if len(pending) > 1 else pending[0]
        new_done, labels = _window(mask, top, done, height, settings)
        if labels is None:
            pending = [mask]
            continue
        strip = InstanceStrip(top, labels, next_id, new_done)
        next_id += strip.count
        keep = max(new_done - HALO, 0)
        strip.resume = {"row": keep, "done": new_done, "next_id": next_id, "attempted": attempted}
        yield strip
        pending, top, done = [mask[keep - top :]], keep, new_done
    if received != height:
        raise ValueError(f"probability rows ended at row {received} of {height}")
