"""Post-processing: probability -> instances, watershed and marker splitting, threshold search."""
from dataclasses import replace

import numpy as np
import pytest

from nuclei_tf.postprocess import (
    PostProcess,
    fill_holes,
    probability_to_instances,
    remove_small_objects,
    search_threshold,
    watershed_split,
)
from nuclei_tf.postprocess.markers import reduce_three_class
from nuclei_tf.postprocess.search import search_settings, search_settings_for

from conftest import disk_instances


def touching_disks():
    """Two overlapping disks of radius 10 whose union is one connected blob."""
    return disk_instances((64, 64), [(32, 22), (32, 40)], 10) > 0


def test_fill_holes_and_remove_small():
    ring = disk_instances((20, 20), [(10, 10)], 6) > 0
    ring[9:12, 9:12] = False
    assert fill_holes(ring).sum() == (disk_instances((20, 20), [(10, 10)], 6) > 0).sum()
    labels = np.array([[1, 1, 0, 2], [1, 1, 0, 0]])
    assert remove_small_objects(labels, 2).tolist() == [[1, 1, 0, 0], [1, 1, 0, 0]]
    assert remove_small_objects(labels, 1).tolist() == labels.tolist()


def test_watershed_splits_touching_nuclei_that_components_merge():
    mask = touching_disks()
    assert probability_to_instances(mask.astype(np.float32)).max() == 1
    split = watershed_split(mask)
    assert split.max() == 2
    assert split[32, 15] != split[32, 47] and (split > 0).sum() == mask.sum()
    assert probability_to_instances(mask.astype(np.float32), PostProcess(split="watershed")).max() == 2


def test_in_place_component_splitting_equals_the_obvious_one():
    """split_components overwrites its component labels with negated piece ids; the obvious way
    keeps a second output map. Random blobs, pieces that leave some component pixels unlabelled."""
    from scipy import ndimage

    from nuclei_tf.data.labels import binary_to_instances
    from nuclei_tf.postprocess.watershed import split_components

    rng = np.random.default_rng(3)
    mask = ndimage.binary_opening(rng.random((96, 96)) < 0.55)

    def split(component, crop):  # halves by column parity; odd-row pixels left unlabelled
        pieces = np.where(component, 1 + (np.arange(component.shape[1]) % 2 == 1), 0)
        pieces[1::2] = 0
        return pieces.astype(np.int32)

    components = binary_to_instances(mask)
    expected, next_id = np.zeros(mask.shape, np.int32), 1
    for label, box in enumerate(ndimage.find_objects(components), start=1):
        crop = tuple(slice(max(s.start - 4, 0), s.stop + 4) for s in box)
        pieces = split(components[crop] == label, crop)
        expected[crop][pieces > 0] = pieces[pieces > 0] + next_id - 1
        next_id += int(pieces.max())
    assert components.max() > 10
    assert np.array_equal(split_components(mask, split), expected)


def test_watershed_keeps_thin_objects_without_markers():
    mask = np.zeros((16, 16), bool)
    mask[5, 2:14] = True  # a one-pixel-wide line: no h-maximum of height 1
    assert watershed_split(mask).max() == 1
    assert watershed_split(np.zeros((8, 8), bool)).max() == 0


def test_probability_conventions_and_errors():
    probability = np.zeros((32, 32), np.float32)
    probability[4:12, 4:12] = 0.8
    probability[20:22, 20:22] = 0.9  # 4 px: removed by min_size 10
    assert probability_to_instances(probability).max() == 1
    softmax = np.stack([1 - probability, probability], axis=-1)
    assert np.array_equal(probability_to_instances(softmax), probability_to_instances(probability))
    assert probability_to_instances(probability, PostProcess(threshold=0.85, min_size=1)).max() == 1
    with pytest.raises(ValueError, match="NaN"):
        probability_to_instances(np.full((4, 4), np.nan))
    with pytest.raises(ValueError, match="threshold"):
        PostProcess(threshold=1.5)
    settings = PostProcess(threshold=0.4, split="watershed")
    assert PostProcess.from_dict(settings.to_dict()) == settings


def test_search_threshold_finds_the_separating_threshold():
    gt = disk_instances((64, 64), [(16, 16), (44, 44)], 8)
    rng = np.random.default_rng(0)
    probability = np.where(gt > 0, 0.62, 0.1) + rng.uniform(-0.05, 0.05, gt.shape)
    probability[2:10, 40:60] = 0.4  # a faint false blob: kept at 0.3, dropped at 0.5
    best, scores = search_threshold([probability], [gt], metric="aji", thresholds=(0.3, 0.5, 0.7))
    assert best.threshold == 0.5 and scores[0.5] > 0.99 and scores[0.7] == 0.0
    best_p, _ = search_threshold([probability], [gt], metric="precision@0.5", thresholds=(0.3, 0.5))
    assert best_p.threshold == 0.5
    with pytest.raises(ValueError, match="unknown metric"):
        search_threshold([probability], [gt], metric="accuracy", thresholds=(0.5,))


def test_one_search_chooses_for_several_metrics_as_separate_searches_would():
    gt = disk_instances((64, 64), [(16, 16), (44, 44)], 8)
    probability = np.where(gt > 0, 0.62, 0.1)
    probability[2:10, 40:60] = 0.4
    probability[30:33, 5:8] = 0.8  # a 9 px false speck: only a size filter drops it
    grid = [PostProcess(threshold=t, min_size=m) for t in (0.3, 0.5, 0.7) for m in (1, 20)]
    chosen = search_settings_for([probability], [gt], grid, ("aji", "recall@0.5", "pq"))
    for metric, (best, scores) in chosen.items():
        assert (best, scores) == search_settings([probability], [gt], grid, metric)
    assert chosen["aji"][0] == PostProcess(threshold=0.5, min_size=20)
    assert chosen["recall@0.5"][0] == PostProcess(threshold=0.3, min_size=1)  # ties go to the earlier candidate
    with pytest.raises(ValueError, match="unknown metric 'accuracy'"):
        search_settings_for([probability], [gt], grid, ("aji", "accuracy"))


def three_class_probabilities():
    """(interior, nucleus) maps: two overlapping disks of radius 10 (one blob) with an interior
    disk of radius 4 at each centre, and a lone disk without interior (no marker)."""
    centres = [(32, 22), (32, 40), (10, 54)]
    nucleus = np.where(disk_instances((64, 64), centres, 10) > 0, 0.9, 0.05)
    interior = np.where(disk_instances((64, 64), centres[:2], 4) > 0, 0.8, 0.02)
    interior[50:55, 5:10] = 0.9  # outside every nucleus: not a marker
    return np.stack([interior, nucleus], axis=-1).astype(np.float32)


def test_markers_split_touching_nuclei_and_keep_a_nucleus_without_marker_whole():
    probabilities = three_class_probabilities()
    settings = PostProcess(split="markers", threshold=0.5, marker_threshold=0.5)
    instances = probability_to_instances(probabilities, settings)
    assert instances.max() == 3 and instances.dtype == np.int32
    np.testing.assert_array_equal(instances > 0, probabilities[..., 1] > 0.5)
    assert instances[32, 15] != instances[32, 47] and instances[10, 54] not in (instances[32, 15], instances[32, 47])
    assert (instances[32, 12:31] == instances[32, 15]).all() and (instances[32, 32:51] == instances[32, 47]).all()
    assert probability_to_instances(probabilities, PostProcess(split="none")).max() == 2  # the nucleus channel alone
    assert probability_to_instances(probabilities, replace(settings, marker_threshold=0.85)).max() == 2  # no marker left
    required = probability_to_instances(probabilities, replace(settings, require_marker=True))
    assert required.max() == 2 and required[10, 54] == 0  # the lone disk has no marker: dropped
    np.testing.assert_array_equal(required > 0, (instances > 0) & (instances != instances[10, 54]))
    assert not probability_to_instances(probabilities, replace(settings, marker_threshold=0.85, require_marker=True)).any()
    with pytest.raises(ValueError, match="require_marker needs split 'markers'"):
        PostProcess(split="watershed", require_marker=True)


def test_markers_smaller_than_min_marker_size_neither_split_nor_vouch():
    probabilities = three_class_probabilities()
    probabilities[9:12, 53:56, 0] = 0.8  # a 9 px interior speck in the lone disk
    settings = PostProcess(split="markers", threshold=0.5, marker_threshold=0.5, require_marker=True)
    assert probability_to_instances(probabilities, settings).max() == 3  # the speck is a marker
    kept = probability_to_instances(probabilities, replace(settings, min_marker_size=10))
    assert kept.max() == 2 and kept[10, 54] == 0 and kept[32, 15] != kept[32, 47]  # 49 px markers still split
    assert probability_to_instances(probabilities, replace(settings, min_marker_size=9)).max() == 3
    whole = probability_to_instances(probabilities, replace(settings, min_marker_size=50, require_marker=False))
    assert whole.max() == 2 and whole[32, 15] == whole[32, 47]  # no marker left: the pair stays one blob
    assert not probability_to_instances(probabilities, replace(settings, min_marker_size=50)).any()
    with pytest.raises(ValueError, match="min_marker_size needs split 'markers'"):
        PostProcess(split="watershed", min_marker_size=5)


def test_a_three_class_softmax_is_reduced_to_interior_and_nucleus():
    interior, nucleus = np.moveaxis(three_class_probabilities(), -1, 0)
    softmax = np.stack([1 - nucleus, interior, nucleus - interior], axis=-1)
    np.testing.assert_allclose(reduce_three_class(softmax), three_class_probabilities(), atol=1e-6)
    settings = PostProcess(split="markers")
    np.testing.assert_array_equal(probability_to_instances(softmax, settings),
                                  probability_to_instances(three_class_probabilities(), settings))
    with pytest.raises(ValueError, match="split 'markers' needs a three-class or hv model"):
        probability_to_instances(nucleus, settings)
    with pytest.raises(ValueError, match="marker_threshold must lie in"):
        PostProcess(split="markers", marker_threshold=-0.1)
    assert PostProcess.from_dict(settings.to_dict()) == settings
