"""Ways of pairing ground-truth with predicted objects, each returning indices into an OverlapTable's pairs."""

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


def best_match_per_gt(table):
    """For every ground-truth object that overlaps a prediction, the pair with its highest IoU.

    This is the many-to-one matching of AJI (Kumar et al. 2017); ties go to the smallest prediction id.
    """
    order = np.lexsort((-table.pair_iou, table.pair_gt))
    return order[_run_starts(table.pair_gt[order])]


def _run_starts(values):
    """Boolean mask of the entries of a sorted array that differ from their predecessor."""
    first = np.ones(len(values), bool)
    first[1:] = values[1:] != values[:-1]
    return first


def optimal_pairs(table):
    """Pairs of a one-to-one assignment maximising the total IoU (the AJI+ matching, Graham et al. 2019).

    Only overlapping pairs (IoU > 0) are kept. The assignment splits over the connected components
    of the bipartite overlap graph, so ``linear_sum_assignment`` runs on each component's small
    dense IoU matrix; components with a single pair are taken as they are.
    """
    if len(table.pair_inter) == 0:
        return np.zeros(0, np.intp)
    n_nodes = table.n_gt + table.n_pred
    edges = (table.pair_gt, table.n_gt + table.pair_pred)
    graph = coo_matrix((np.ones(len(table.pair_gt), np.int8), edges), shape=(n_nodes, n_nodes))
    component = connected_components(graph, directed=False)[1][table.pair_gt]
    order = np.argsort(component, kind="stable")
    starts = np.flatnonzero(_run_starts(component[order]))
    stops = np.r_[starts[1:], len(order)]
    single = stops - starts == 1
    chosen = [order[starts[single]]]
    for start, stop in zip(starts[~single], stops[~single]):
        pairs = order[start:stop]
        rows = np.unique(table.pair_gt[pairs], return_inverse=True)[1]
        cols = np.unique(table.pair_pred[pairs], return_inverse=True)[1]
        iou = np.zeros((rows.max() + 1, cols.max() + 1))
        iou[rows, cols] = table.pair_iou[pairs]
        pair_at = np.full(iou.shape, -1)
        pair_at[rows, cols] = pairs
        picked = pair_at[linear_sum_assignment(iou, maximize=True)]
        chosen.append(picked[picked >= 0])
    return np.sort(np.concatenate(chosen))


def pairs_above(table, threshold):
    """Boolean mask of the pairs with IoU > ``threshold``.

    For ``threshold >= 0.5`` an object can be in at most one such pair, so the mask is a
    one-to-one matching (Kirillov et al. 2019, Theorem 1); lower thresholds raise ``ValueError``.
    """
    if threshold < 0.5:
        raise ValueError(f"IoU threshold {threshold} < 0.5 does not give a unique matching")
    return table.pair_iou > threshold
