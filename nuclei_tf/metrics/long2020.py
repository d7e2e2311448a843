"""The two metrics of Long 2020 (U-Net+, section "Metrics to evaluate the performance of model").

The paper: "one ground truth and predicted image were first decomposed to multiple connected
regions and each connected region represents one true cell or predicted cell"; for every ground
truth cell g_i one looks for a predicted cell "whose IOU value with g_i was greater than a preset
threshold from {T_k}. If such a predicted mask existed, it was considered as a true positive (TP)
prediction (the IOU value was recorded), otherwise g_i was categorized as a false negative (FN)
truth (the IOU value was set to 0.0 accordingly). [...] False positive (FP) value was counted when
the IOU of one predicted cell with all g_i was 0.0. The average IOU could then be calculated for
one image." The second metric is "the precision definition in the contest" (2018 Data Science
Bowl), Eq. 3: precision = 1/|{T_k}| sum_k TP_k / (TP_k + FN_k + FP_k), T_k = 0.50:0.05:0.95.

The paper leaves three choices open; every reading below comes from one ``OverlapTable``:

* Threshold of the average IOU ("a preset threshold from {T_k}"). Primary ``long_avg_iou``:
  T = 0.5, the smallest T_k; above 0.5 a ground-truth cell can exceed T with at most one
  prediction, so "found one" is unambiguous. ``long_avg_iou_all_t``: the mean over all T_k of
  the per-threshold average IOU.
* Cells the average runs over. Primary: the ground-truth cells (TP IoU or 0.0) plus, with value
  0.0, the FPs as the paper defines them just before the average, predicted cells that overlap
  no ground-truth cell at all (``n_fp_zero_overlap``); a prediction that only partly overlaps a
  ground-truth cell is not counted. ``long_avg_iou_gt_only``: the ground-truth cells alone.
* What a cell is. ``cells="components"`` (primary, "decomposed to multiple connected regions"):
  the connected components of each map's foreground, so touching nuclei merge into one cell;
  8-connectivity, the 2-D default of ``skimage.measure.label`` (the paper names none).
  ``cells="instances"``: the ground-truth nuclei and predicted instances as given; then
  ``long_precision`` equals ``map`` of ``evaluate_instances``.

Eq. 3 is always the contest's: one-to-one matches at IoU > T_k, FP_k = unmatched predictions,
FN_k = unmatched ground truth. Results are "the average IOU and precision for all the images in
the test set" as mean +- std (``long2020_summary``). Empty images follow ``scoring``: both maps
empty gives 1.0, one empty gives 0.0. ``mean_cell_iou`` in ``instance`` is another, threshold-free
reading (each ground-truth cell's best IoU, no FP term).
"""

from numbers import Real

import numpy as np
from scipy import ndimage

from .instance import AP_THRESHOLDS, ap_scores, detection_counts
from .matching import pairs_above
from .overlap import OverlapTable
from .scoring import safe_ratio
from .validation import check_label_maps

#: The cell definitions ``long2020_scores`` accepts, primary first.
CELLS = ("components", "instances")


def connected_regions(labels, connectivity=2):
    """Connected components of the foreground (``labels > 0``) as an int32 map with ids 1..N.

    Long 2020's "connected regions": ids are ignored, so touching instances become one region.
    ``connectivity`` 2 is 8-connectivity (the default), 1 is 4-connectivity (scipy's convention).
    """
    structure = ndimage.generate_binary_structure(2, connectivity)
    return ndimage.label(np.asarray(labels) > 0, structure=structure)[0]


def _iou_sum_key(threshold):
    return f"_long_iou_sum@{threshold:.2f}"


def long2020_counts(table):
    """``n_gt``, ``n_pred``, TP_k (``_tp@t``) and the sum of the recorded TP IoUs at each T_k,
    and ``n_fp_zero_overlap``, the predicted cells whose IoU with all g_i is 0.0."""
    iou_sums = {_iou_sum_key(t): float(table.pair_iou[pairs_above(table, t)].sum()) for t in AP_THRESHOLDS}
    zero_overlap = table.n_pred - len(np.unique(table.pair_pred))
    return {**table.object_counts(), "n_fp_zero_overlap": zero_overlap, **detection_counts(table), **iou_sums}


def long2020_scores_from_counts(counts):
    """The average-IOU readings and Eq. 3 precision of one image's ``long2020_counts``."""
    cells = counts["n_gt"] + counts["n_fp_zero_overlap"]
    per_threshold = [safe_ratio(counts[_iou_sum_key(t)], cells, counts) for t in AP_THRESHOLDS]
    primary = counts[_iou_sum_key(AP_THRESHOLDS[0])]
    return {
        "long_avg_iou": per_threshold[0],
        "long_avg_iou_gt_only": safe_ratio(primary, counts["n_gt"], counts),
        "long_avg_iou_all_t": float(np.mean(per_threshold)),
        "long_precision": ap_scores(counts)["map"],
    }


def long2020_scores(gt, pred, *, cells="components", name=None):
    """Long 2020's average IOU and precision (Eq. 3) of one image, in every reading.

    ``gt`` and ``pred`` are 2-D integer label maps (a 0/1 mask is one); ``cells`` is
    ``"components"`` or ``"instances"`` (module docstring); ``name`` prefixes ``ValueError``
    messages. Returns ``long_avg_iou``, ``long_avg_iou_gt_only``, ``long_avg_iou_all_t``,
    ``long_precision``, then ``n_gt``, ``n_pred``, ``n_fp_zero_overlap`` (cells, not ids) and the
    ``_``-prefixed raw counts.
    """
    if cells not in CELLS:
        raise ValueError(f"cells must be one of {CELLS}, got {cells!r}")
    gt, pred = check_label_maps(gt, pred, name)
    if cells == "components":
        gt, pred = connected_regions(gt), connected_regions(pred)
    counts = long2020_counts(OverlapTable.from_labels(gt, pred, name=name))
    return {**long2020_scores_from_counts(counts), **counts}


def long2020_summary(rows):
    """Mean and std over images of every public number of ``long2020_scores`` rows.

    Returns ``<key>_mean`` and ``<key>_std`` for each key without a leading ``_`` (non-numeric
    entries such as an image name are skipped) and ``n_images``. The std is the population std
    (numpy's default ``ddof=0``); the paper's "mean +- std" does not say which.
    """
    rows = list(rows)
    if not rows:
        raise ValueError("no results to summarise")
    keys = [key for key, value in rows[0].items() if not key.startswith("_") and isinstance(value, Real)]
    summary = {}
    for key in keys:
        values = np.array([row[key] for row in rows], float)
        summary[f"{key}_mean"] = float(values.mean())
        summary[f"{key}_std"] = float(values.std())
    return {**summary, "n_images": len(rows)}
