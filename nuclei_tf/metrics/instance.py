"""Object-level metrics: AJI, AJI+, PQ, DSB-2018 AP, P/R/F1, DICE2 and mean cell IoU.

Each metric family is a pair of functions: ``*_counts(table)`` reads an ``OverlapTable`` and
returns additive counts (ground-truth/prediction sizes plus ``_``-prefixed raw sums), and
``*_scores(counts)`` turns such counts, of one image or summed over images, into scores. The
label-map functions at the bottom chain the two for one image.
"""

from functools import partial

import numpy as np

from .matching import best_match_per_gt, optimal_pairs, pairs_above
from .scoring import safe_ratio, score_labels

#: IoU thresholds 0.50:0.05:0.95 of the 2018 Data Science Bowl mAP.
AP_THRESHOLDS = tuple(round(0.5 + 0.05 * k, 2) for k in range(10))
#: IoU thresholds of the object precision/recall/F1 columns of Lagree et al. 2021, Table 2.
PRF_THRESHOLDS = (0.5, 0.7)


def _tp_key(threshold):
    return f"_tp@{threshold:.2f}"


def _aggregated_jaccard_counts(table, pairs, key):
    """C = sum |G ∩ S| over ``pairs``; U = sum |G ∪ S| over ``pairs`` plus the areas of the
    ground-truth and predicted objects in none of them."""
    gt_left = np.ones(table.n_gt, bool)
    gt_left[table.pair_gt[pairs]] = False
    pred_left = np.ones(table.n_pred, bool)
    pred_left[table.pair_pred[pairs]] = False
    union = table.pair_union[pairs].sum() + table.gt_area[gt_left].sum() + table.pred_area[pred_left].sum()
    return {
        **table.object_counts(),
        f"_{key}_inter": int(table.pair_inter[pairs].sum()),
        f"_{key}_union": int(union),
    }


def aji_counts(table):
    """C and U of AJI, MoNuSeg v1.0 (Kumar et al. 2017): each ground-truth object is paired with
    its highest-IoU prediction (a prediction may serve several); unpaired areas join U."""
    return _aggregated_jaccard_counts(table, best_match_per_gt(table), "aji")


def aji_plus_counts(table):
    """C and U of AJI+ (Graham et al. 2019): as AJI, over a one-to-one maximum-IoU assignment."""
    return _aggregated_jaccard_counts(table, optimal_pairs(table), "aji_plus")


def aji_scores(counts):
    """``aji`` = C / U."""
    return {"aji": safe_ratio(counts["_aji_inter"], counts["_aji_union"], counts)}


def aji_plus_scores(counts):
    """``aji_plus`` = C+ / U+."""
    return {"aji_plus": safe_ratio(counts["_aji_plus_inter"], counts["_aji_plus_union"], counts)}


def pq_counts(table):
    """True positives at IoU > 0.5 and the sum of their IoUs (Kirillov et al. 2019)."""
    matched = pairs_above(table, 0.5)
    return {
        **table.object_counts(),
        _tp_key(0.5): int(matched.sum()),
        "_tp_iou_sum": float(table.pair_iou[matched].sum()),
    }


def pq_scores(counts):
    """``dq`` = TP / (TP + FP/2 + FN/2), ``sq`` = mean IoU of the TPs, ``pq`` = DQ * SQ."""
    tp = counts[_tp_key(0.5)]
    dq = safe_ratio(tp, (counts["n_gt"] + counts["n_pred"]) / 2, counts)
    sq = safe_ratio(counts["_tp_iou_sum"], tp, counts)
    return {"pq": dq * sq, "dq": dq, "sq": sq}


def detection_counts(table, thresholds=AP_THRESHOLDS):
    """True positives (one-to-one pairs with IoU > t) at each threshold ``t >= 0.5``."""
    return {**table.object_counts(), **{_tp_key(t): int(pairs_above(table, t).sum()) for t in thresholds}}


def ap_scores(counts, thresholds=AP_THRESHOLDS):
    """``ap@t`` = TP / (TP + FP + FN) at each threshold and their mean ``map`` (2018 Data Science Bowl)."""
    ap = {}
    for t in thresholds:
        tp = counts[_tp_key(t)]
        ap[f"ap@{t:.2f}"] = safe_ratio(tp, counts["n_gt"] + counts["n_pred"] - tp, counts)
    return {"map": float(np.mean(list(ap.values()))), **ap}


def prf_scores(counts, thresholds=PRF_THRESHOLDS):
    """Object ``precision@t`` = TP/(TP+FP), ``recall@t`` = TP/(TP+FN), ``f1@t`` = 2TP/(2TP+FP+FN)."""
    scores = {}
    for t in thresholds:
        tp = counts[_tp_key(t)]
        scores[f"precision@{t:g}"] = safe_ratio(tp, counts["n_pred"], counts)
        scores[f"recall@{t:g}"] = safe_ratio(tp, counts["n_gt"], counts)
        scores[f"f1@{t:g}"] = safe_ratio(2 * tp, counts["n_gt"] + counts["n_pred"], counts)
    return scores


def dice2_counts(table):
    """Sums over all overlapping pairs of |G ∩ S| and of |G| + |S| (DICE2, Graham et al. 2019)."""
    areas = table.gt_area[table.pair_gt] + table.pred_area[table.pair_pred]
    return {**table.object_counts(), "_dice2_inter": int(table.pair_inter.sum()), "_dice2_area": int(areas.sum())}


def dice2_scores(counts):
    """``dice2`` = 2 sum |G ∩ S| / sum (|G| + |S|)."""
    return {"dice2": safe_ratio(2 * counts["_dice2_inter"], counts["_dice2_area"], counts)}


def cell_iou_counts(table):
    """Sum over ground-truth objects of the IoU with their best-matching prediction (0 if none)."""
    return {**table.object_counts(), "_best_iou_sum": float(table.pair_iou[best_match_per_gt(table)].sum())}


def cell_iou_scores(counts):
    """``mean_cell_iou``: each ground-truth cell's best IoU, averaged (no threshold, no FP term);
    Long 2020's own "average IOU" readings are in :mod:`~nuclei_tf.metrics.long2020`."""
    return {"mean_cell_iou": safe_ratio(counts["_best_iou_sum"], counts["n_gt"], counts)}


def aji(gt, pred, *, name=None):
    """Aggregated Jaccard Index of two label maps (see ``aji_counts``)."""
    return score_labels(aji_counts, aji_scores, gt, pred, name)["aji"]


def aji_plus(gt, pred, *, name=None):
    """AJI+ of two label maps (see ``aji_plus_counts``)."""
    return score_labels(aji_plus_counts, aji_plus_scores, gt, pred, name)["aji_plus"]


def panoptic_quality(gt, pred, *, name=None):
    """``{"pq", "dq", "sq"}`` of two label maps at IoU 0.5 (see ``pq_scores``)."""
    return score_labels(pq_counts, pq_scores, gt, pred, name)


def average_precision(gt, pred, thresholds=AP_THRESHOLDS, *, name=None):
    """``{"map", "ap@t"...}`` of two label maps over ``thresholds`` (see ``ap_scores``)."""
    return score_labels(
        partial(detection_counts, thresholds=thresholds), partial(ap_scores, thresholds=thresholds), gt, pred, name
    )


def precision_recall_f1(gt, pred, thresholds=PRF_THRESHOLDS, *, name=None):
    """Object precision, recall and F1 of two label maps at each threshold (see ``prf_scores``)."""
    return score_labels(
        partial(detection_counts, thresholds=thresholds), partial(prf_scores, thresholds=thresholds), gt, pred, name
    )


def dice2(gt, pred, *, name=None):
    """DICE2 of two label maps (see ``dice2_counts``)."""
    return score_labels(dice2_counts, dice2_scores, gt, pred, name)["dice2"]


def mean_cell_iou(gt, pred, *, name=None):
    """Mean over ground-truth objects of their best IoU with a prediction (see ``cell_iou_counts``)."""
    return score_labels(cell_iou_counts, cell_iou_scores, gt, pred, name)["mean_cell_iou"]
