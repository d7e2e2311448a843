"""Pixel-level metrics of the binary foreground (Kasturi et al. 2022, Table III) and DICE1."""

from .scoring import safe_ratio, score_labels


def pixel_counts(table):
    """Foreground confusion counts ``_pixel_tp/fp/fn/tn`` (object ids ignored)."""
    tp = int(table.pair_inter.sum())
    fp = int(table.pred_area.sum()) - tp
    fn = int(table.gt_area.sum()) - tp
    tn = table.n_pixels - tp - fp - fn
    return {**table.object_counts(), "_pixel_tp": tp, "_pixel_fp": fp, "_pixel_fn": fn, "_pixel_tn": tn}


def pixel_scores(counts):
    """Jaccard, Dice (= F1, also reported as ``dice``, DICE1 of Graham et al. 2019), precision,
    recall and accuracy of the foreground."""
    tp, fp, fn, tn = (counts[f"_pixel_{k}"] for k in ("tp", "fp", "fn", "tn"))
    dice = safe_ratio(2 * tp, 2 * tp + fp + fn, counts)
    return {
        "dice": dice,
        "pixel_jaccard": safe_ratio(tp, tp + fp + fn, counts),
        "pixel_dice": dice,
        "pixel_precision": safe_ratio(tp, tp + fp, counts),
        "pixel_recall": safe_ratio(tp, tp + fn, counts),
        "pixel_accuracy": safe_ratio(tp + tn, tp + fp + fn + tn, counts),
    }


def pixel_metrics(gt, pred, *, name=None):
    """Pixel-level scores of two label maps (see ``pixel_scores``)."""
    return score_labels(pixel_counts, pixel_scores, gt, pred, name)
