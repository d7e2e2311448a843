"""Slow, obvious reference metrics (full-image masks, loops over nuclei) and random label maps.

Shared by tests/test_metrics.py and benchmarks/bench_metrics.py.
"""

import numpy as np
from scipy.optimize import linear_sum_assignment

THRESHOLDS = [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]


def _fraction(num, den, both_empty):
    if den == 0:
        return 1.0 if both_empty else 0.0
    return num / den


def reference_metrics(gt, pred):
    """Every public score of ``evaluate_instances`` computed object by object with boolean masks."""
    gt_ids = [i for i in np.unique(gt) if i != 0]
    pred_ids = [j for j in np.unique(pred) if j != 0]
    gt_masks = [gt == i for i in gt_ids]
    pred_masks = [pred == j for j in pred_ids]
    empty = not gt_ids and not pred_ids
    inter = np.zeros((len(gt_ids), len(pred_ids)))
    union = np.zeros((len(gt_ids), len(pred_ids)))
    for a, gmask in enumerate(gt_masks):
        for j in np.unique(pred[gmask]):
            if j != 0:
                b = pred_ids.index(j)
                inter[a, b] = np.logical_and(gmask, pred_masks[b]).sum()
                union[a, b] = np.logical_or(gmask, pred_masks[b]).sum()
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    out = {"n_gt": len(gt_ids), "n_pred": len(pred_ids)}

    # AJI (Kumar et al. 2017)
    c = u = 0
    used = set()
    for a, gmask in enumerate(gt_masks):
        b = int(np.argmax(iou[a])) if pred_ids else 0
        if not pred_ids or iou[a, b] == 0:
            u += gmask.sum()
            continue
        c += inter[a, b]
        u += union[a, b]
        used.add(b)
    for b, pmask in enumerate(pred_masks):
        if b not in used:
            u += pmask.sum()
    out["aji"] = _fraction(c, u, empty)

    # AJI+ (Graham et al. 2019)
    rows, cols = linear_sum_assignment(-iou)
    keep = iou[rows, cols] > 0
    rows, cols = rows[keep], cols[keep]
    c = inter[rows, cols].sum()
    u = union[rows, cols].sum()
    u += sum(m.sum() for a, m in enumerate(gt_masks) if a not in set(rows))
    u += sum(m.sum() for b, m in enumerate(pred_masks) if b not in set(cols))
    out["aji_plus"] = _fraction(c, u, empty)

    # PQ, AP, P/R/F1
    tp05 = int((iou > 0.5).sum())
    dq = _fraction(tp05, tp05 + 0.5 * (len(pred_ids) - tp05) + 0.5 * (len(gt_ids) - tp05), empty)
    sq = _fraction(iou[iou > 0.5].sum(), tp05, empty)
    out.update(pq=dq * sq, dq=dq, sq=sq)
    aps = []
    for t in THRESHOLDS:
        tp = int((iou > t).sum())
        fp, fn = len(pred_ids) - tp, len(gt_ids) - tp
        aps.append(_fraction(tp, tp + fp + fn, empty))
        out[f"ap@{t:.2f}"] = aps[-1]
        if t in (0.5, 0.7):
            out[f"precision@{t}"] = _fraction(tp, tp + fp, empty)
            out[f"recall@{t}"] = _fraction(tp, tp + fn, empty)
            out[f"f1@{t}"] = _fraction(2 * tp, 2 * tp + fp + fn, empty)
    out["map"] = np.mean(aps)

    # DICE2 and mean cell IoU
    inter_sum = markup = 0
    for a, gmask in enumerate(gt_masks):
        for b, pmask in enumerate(pred_masks):
            if inter[a, b] > 0:
                inter_sum += inter[a, b]
                markup += gmask.sum() + pmask.sum()
    out["dice2"] = _fraction(2 * inter_sum, markup, empty)
    best = [iou[a].max() if pred_ids else 0.0 for a in range(len(gt_ids))]
    out["mean_cell_iou"] = _fraction(sum(best), len(gt_ids), empty)

    # pixel level
    g, p = gt > 0, pred > 0
    tp = np.logical_and(g, p).sum()
    fp = np.logical_and(~g, p).sum()
    fn = np.logical_and(g, ~p).sum()
    tn = np.logical_and(~g, ~p).sum()
    out["dice"] = out["pixel_dice"] = _fraction(2 * tp, 2 * tp + fp + fn, empty)
    out["pixel_jaccard"] = _fraction(tp, tp + fp + fn, empty)
    out["pixel_precision"] = _fraction(tp, tp + fp, empty)
    out["pixel_recall"] = _fraction(tp, tp + fn, empty)
    out["pixel_accuracy"] = (tp + tn) / gt.size
    return out


def random_ellipses(rng, shape, n, radius=(4.0, 12.0)):
    """``n`` random ellipses as rows ``(centre_y, centre_x, radius_y, radius_x, angle)``."""
    return np.column_stack([
        rng.uniform(0, shape[0], n),
        rng.uniform(0, shape[1], n),
        rng.uniform(*radius, n),
        rng.uniform(*radius, n),
        rng.uniform(0, np.pi, n),
    ])


def paint(shape, ellipses, ids, right_ids=None):
    """Label map of ellipses painted in order (later ones cover earlier ones); the half of
    ellipse ``k`` on the positive side of its major axis gets ``right_ids[k]`` (default ``ids[k]``)."""
    right_ids = ids if right_ids is None else right_ids
    labels = np.zeros(shape, np.int64)
    for (cy, cx, ry, rx, angle), left, right in zip(ellipses, ids, right_ids):
        reach = int(np.ceil(max(ry, rx)))
        y0, y1 = max(int(cy) - reach, 0), min(int(cy) + reach + 1, shape[0])
        x0, x1 = max(int(cx) - reach, 0), min(int(cx) + reach + 1, shape[1])
        y, x = np.mgrid[y0:y1, x0:x1]
        u = (x - cx) * np.cos(angle) + (y - cy) * np.sin(angle)
        v = (y - cy) * np.cos(angle) - (x - cx) * np.sin(angle)
        inside = (u / rx) ** 2 + (v / ry) ** 2 <= 1
        labels[y0:y1, x0:x1][inside] = np.where(u[inside] > 0, right, left)
    return labels


def random_pair(rng, shape=(256, 256), n=60, radius=(4.0, 12.0)):
    """A ground-truth map of ``n`` overlapping ellipses and a prediction derived from it by
    jitter, shrinking/growing, dropping (FN), merging, splitting and adding (FP) nuclei; both use
    random non-contiguous ids."""
    gt_shapes = random_ellipses(rng, shape, n, radius)
    gt = paint(shape, gt_shapes, rng.choice(10**6, n, replace=False) + 1)
    kept = gt_shapes[rng.random(n) > 0.08].copy()
    m = len(kept)
    kept[:, :2] += rng.normal(0, 1.5, (m, 2))
    kept[:, 2:4] *= rng.uniform(0.75, 1.15, (m, 2))
    kept[:, 4] += rng.normal(0, 0.2, m)
    shapes = np.vstack([kept, random_ellipses(rng, shape, max(n // 12, 1), radius)])
    ids = rng.choice(10**6, 2 * len(shapes), replace=False) + 1
    left, right = ids[: len(shapes)], ids[len(shapes) :].copy()
    unsplit = rng.random(len(shapes)) > 0.05
    right[unsplit] = left[unsplit]
    merge = np.flatnonzero(rng.random(len(shapes) - 1) < 0.05)
    left[merge + 1] = right[merge + 1] = left[merge]
    return gt, paint(shape, shapes, left, right)


def reference_long2020(gt, pred, cells="components"):
    """Long 2020's average IOU and Eq. 3 precision, cell by cell as the paper words it.

    Cells are ``skimage.measure.label`` regions of the foreground (8-connectivity) or the given ids.
    """
    from skimage.measure import label

    if cells == "components":
        gt, pred = label(gt > 0), label(pred > 0)
    gt_cells = [gt == i for i in np.unique(gt) if i != 0]
    pred_cells = [pred == j for j in np.unique(pred) if j != 0]
    empty = not gt_cells and not pred_cells
    iou = np.zeros((len(gt_cells), len(pred_cells)))
    for a, g in enumerate(gt_cells):
        for b, p in enumerate(pred_cells):
            iou[a, b] = np.logical_and(g, p).sum() / np.logical_or(g, p).sum()
    n_fp_zero = sum(1 for b in range(len(pred_cells)) if all(iou[a, b] == 0.0 for a in range(len(gt_cells))))
    avg, gt_only, precision = [], [], []
    for t in THRESHOLDS:
        recorded = []
        for a in range(len(gt_cells)):
            found = [iou[a, b] for b in range(len(pred_cells)) if iou[a, b] > t]
            recorded.append(found[0] if found else 0.0)
        avg.append(_fraction(sum(recorded), len(recorded) + n_fp_zero, empty))
        gt_only.append(_fraction(sum(recorded), len(recorded), empty))
        tp = sum(1 for value in recorded if value > 0)
        fn = len(gt_cells) - tp
        fp = len(pred_cells) - sum(1 for b in range(len(pred_cells)) if (iou[:, b] > t).any())
        precision.append(_fraction(tp, tp + fn + fp, empty))
    return {
        "long_avg_iou": avg[0],
        "long_avg_iou_gt_only": gt_only[0],
        "long_avg_iou_all_t": float(np.mean(avg)),
        "long_precision": float(np.mean(precision)),
        "n_gt": len(gt_cells),
        "n_pred": len(pred_cells),
        "n_fp_zero_overlap": n_fp_zero,
    }
