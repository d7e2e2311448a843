"""Overlap (contingency) table of two instance maps: the single pass over pixels behind every metric."""

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .validation import check_label_maps

#: The gt x pred intersection counts are tallied in a dense array when it has at most this
#: many cells (about 32 MB); larger tables are tallied sparsely by sorting the pair keys.
DENSE_LIMIT = 1 << 22


def _compact(labels):
    """Return ``(ids, index, areas)``: the sorted non-zero ids, the flat map of 0..n indices
    (0 = background, k = the k-th smallest id) and each object's pixel count."""
    flat = labels.ravel()
    top = int(flat.max())
    if top <= 4 * flat.size:
        counts = np.bincount(flat.astype(np.intp, copy=False))
        ids = np.flatnonzero(counts[1:]) + 1
        lookup = np.zeros(top + 1, np.intp)
        lookup[ids] = np.arange(1, len(ids) + 1)
        return ids, lookup[flat], counts[ids]
    ids, index, areas = np.unique(flat, return_inverse=True, return_counts=True)
    has_background = int(ids[0] == 0)
    return ids[has_background:], index + 1 - has_background, areas[has_background:]


@dataclass(frozen=True)
class OverlapTable:
    """Object areas of a ground-truth and a predicted instance map and their non-empty intersections.

    Objects are numbered ``0..n_gt-1`` and ``0..n_pred-1`` in increasing id order (their ids are
    ``gt_ids`` and ``pred_ids``). The table is sparse: pair ``k`` says that ground-truth object
    ``pair_gt[k]`` and predicted object ``pair_pred[k]`` share ``pair_inter[k] > 0`` pixels; pairs
    are sorted by ground-truth then prediction index. Build it with :meth:`from_labels`.
    """

    gt_ids: np.ndarray
    pred_ids: np.ndarray
    gt_area: np.ndarray
    pred_area: np.ndarray
    pair_gt: np.ndarray
    pair_pred: np.ndarray
    pair_inter: np.ndarray
    n_pixels: int

    @classmethod
    def from_labels(cls, gt, pred, name=None):
        """Tally the table of two label maps (checked by ``check_label_maps``; ``name`` labels errors)."""
        gt, pred = check_label_maps(gt, pred, name)
        gt_ids, gt_index, gt_area = _compact(gt)
        pred_ids, pred_index, pred_area = _compact(pred)
        n_pred = max(len(pred_ids), 1)
        both = (gt_index > 0) & (pred_index > 0)
        keys = (gt_index[both] - 1) * n_pred + (pred_index[both] - 1)
        if len(gt_ids) * n_pred <= DENSE_LIMIT:
            tally = np.bincount(keys)
            keys = np.flatnonzero(tally)
            inter = tally[keys]
        else:
            keys, inter = np.unique(keys, return_counts=True)
        pair_gt, pair_pred = np.divmod(keys, n_pred)
        return cls(gt_ids, pred_ids, gt_area, pred_area, pair_gt, pair_pred, inter, gt.size)

    @property
    def n_gt(self):
        """Number of ground-truth objects."""
        return len(self.gt_ids)

    @property
    def n_pred(self):
        """Number of predicted objects."""
        return len(self.pred_ids)

    def object_counts(self):
        """``{"n_gt": ..., "n_pred": ...}``, the counts every family of scores starts from."""
        return {"n_gt": self.n_gt, "n_pred": self.n_pred}

    @cached_property
    def pair_union(self):
        """|G ∪ S| of every stored pair."""
        return self.gt_area[self.pair_gt] + self.pred_area[self.pair_pred] - self.pair_inter

    @cached_property
    def pair_iou(self):
        """Intersection over union (Jaccard index) of every stored pair."""
        return self.pair_inter / self.pair_union
