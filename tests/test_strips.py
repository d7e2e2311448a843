"""Strip-by-strip post-processing (whole slides) gives the whole-image nuclei exactly."""
from dataclasses import replace

import numpy as np
import pytest
from scipy import ndimage

from nuclei_tf.data import MoNuSeg
from nuclei_tf.postprocess import PostProcess, probability_to_instances
from nuclei_tf.postprocess.strips import HALO, instance_strips, row_pieces


def blocks_of(probability, sizes):
    """(top, rows) blocks of ``probability`` with heights cycling through ``sizes``."""
    top, index = 0, 0
    while top < len(probability):
        size = sizes[index % len(sizes)]
        yield top, probability[top : top + size]
        top, index = top + size, index + 1


def by_strips(probability, settings, strip_rows, sizes=(37,)):
    instances = np.zeros(probability.shape[:2], np.int32)
    final = 0
    for strip in instance_strips(blocks_of(probability, sizes), len(probability), settings, strip_rows):
        assert strip.final > final and not instances[strip.top : strip.top + len(strip.labels)][strip.labels > 0].any()
        final = strip.final
        strip.paste(instances)
    assert final == len(probability)
    return instances


def assert_same_nuclei(a, b):
    """Equal up to a renumbering of the ids: same foreground, one-to-one id pairs."""
    np.testing.assert_array_equal(a > 0, b > 0)
    pairs = np.unique(np.stack([a[a > 0], b[b > 0]]), axis=1)
    assert pairs.shape[1] == len(np.unique(a[a > 0])) == len(np.unique(b[b > 0]))


def blob_field(shape, seed, sigma=3.0):
    """A probability-like map of touching blobs, rings with holes and specks."""
    noise = np.random.default_rng(seed).random(shape)
    field = ndimage.gaussian_filter(noise, sigma)
    field = 0.5 + (field - np.quantile(field, 0.7)) / (4 * field.std())  # 30% above 0.5
    return np.clip(field, 0, 1).astype(np.float16)


@pytest.mark.parametrize("settings", [
    PostProcess(threshold=0.55, split="watershed"),
    PostProcess(threshold=0.5, split="none", min_size=1),
    PostProcess(threshold=0.45, split="watershed", fill=False, min_size=30),
])
@pytest.mark.parametrize("strip_rows", [HALO + 1, 16, 61, 1000])
def test_strips_equal_the_whole_image(settings, strip_rows):
    probability = blob_field((230, 170), seed=strip_rows)
    whole = probability_to_instances(probability, settings)
    assert whole.max() > 20
    assert_same_nuclei(by_strips(probability, settings, strip_rows), whole)


def test_row_pieces_cut_at_multiples_of_the_step_whatever_the_blocks():
    rows = np.arange(50)
    pieces = list(row_pieces([(3, rows[3:40]), (40, rows[40:50])], 16))
    assert [(top, len(r)) for top, r in pieces] == [(3, 13), (16, 16), (32, 8), (40, 8), (48, 2)]
    assert all((r == rows[top : top + len(r)]).all() for top, r in pieces)
    assert list(row_pieces([(35, rows[35:40])], 16))[0][0] == 35  # a resumed run's first block


def test_tall_blocks_are_post_processed_in_windows_of_about_strip_rows():
    probability = blob_field((400, 170), seed=7)
    settings = PostProcess(threshold=0.55, split="watershed")
    strips = list(instance_strips(blocks_of(probability, (400,)), 400, settings, strip_rows=40))
    assert len(strips) >= 8 and max(len(s.labels) for s in strips) < 120  # one 400-row window without the cuts
    assert_same_nuclei(by_strips(probability, settings, 40, sizes=(400,)), probability_to_instances(probability, settings))


def three_class_field(shape, seed):
    """(interior, nucleus) float16 maps: :func:`blob_field` as nucleus probability, its peaks
    (shifted by finer noise) as interior probability, so clusters hold zero, one or many markers."""
    nucleus = blob_field(shape, seed).astype(np.float32)
    detail = blob_field(shape, seed + 1, sigma=1.5).astype(np.float32)
    interior = np.clip(nucleus - 0.3 + 0.4 * (detail - 0.5), 0, 1) * nucleus
    return np.stack([interior, nucleus], axis=-1).astype(np.float16)


@pytest.mark.parametrize("settings", [
    PostProcess(threshold=0.5, split="markers", marker_threshold=0.35),
    PostProcess(threshold=0.45, split="markers", marker_threshold=0.3, fill=False, min_size=1),
    PostProcess(threshold=0.5, split="markers", marker_threshold=0.35, require_marker=True),
    PostProcess(threshold=0.5, split="markers", marker_threshold=0.35, require_marker=True, min_marker_size=6),
])
@pytest.mark.parametrize("strip_rows", [HALO + 1, 16, 61, 1000])
def test_marker_strips_equal_the_whole_image(settings, strip_rows):
    probabilities = three_class_field((230, 170), seed=strip_rows)
    whole = probability_to_instances(probabilities, settings)
    clusters = ndimage.label(probabilities[..., 1] > settings.threshold)[1]
    kept = probability_to_instances(probabilities, replace(settings, require_marker=False, min_marker_size=1))
    assert kept.max() > clusters + 10, "markers split many clusters"
    if settings.require_marker:
        assert 0 < whole.max() < kept.max(), "some clusters hold no marker"
    if settings.min_marker_size > 1:
        assert whole.max() < probability_to_instances(probabilities, replace(settings, min_marker_size=1)).max(), \
            "some markers are too small"
    assert_same_nuclei(by_strips(probabilities, settings, strip_rows), whole)


def test_a_cluster_taller_than_the_strip_waits_for_its_rows():
    probability = np.zeros((300, 60), np.float16)
    probability[10:290, 20:30] = 0.9  # one column-shaped nucleus cluster 280 rows tall
    probability[40:60, 40:55] = 0.9
    probability[150:152, 2:4] = 0.9  # removed by the size filter
    settings = PostProcess(threshold=0.5, split="none")
    instances = by_strips(probability, settings, strip_rows=20, sizes=(7, 13))
    assert_same_nuclei(instances, probability_to_instances(probability, settings))
    assert instances.max() == 2


def test_a_hole_across_strip_borders_is_filled():
    probability = np.zeros((120, 40), np.float16)
    probability[20:100, 10:30] = 0.9
    probability[30:90, 15:25] = 0.1  # a hole 60 rows tall
    settings = PostProcess(threshold=0.5, split="none")
    instances = by_strips(probability, settings, strip_rows=HALO + 2, sizes=(3,))
    assert (instances[20:100, 10:30] == 1).all() and instances.max() == 1


def test_bad_blocks_are_refused():
    settings = PostProcess()
    good = np.zeros((20, 8), np.float16)
    with pytest.raises(ValueError, match="expected row 10, got 12"):
        list(instance_strips([(0, good[:10]), (12, good[10:])], 20, settings, strip_rows=8))
    with pytest.raises(ValueError, match="ended at row 10 of 20"):
        list(instance_strips([(0, good[:10])], 20, settings, strip_rows=100))
    with pytest.raises(ValueError, match="NaN or Inf"):
        list(instance_strips([(0, np.full((20, 8), np.nan, np.float16))], 20, settings))
    with pytest.raises(ValueError, match="strip_rows must exceed"):
        list(instance_strips([(0, good)], 20, settings, strip_rows=HALO))


def test_real_monuseg_nuclei_by_strips(monuseg_root):
    """A MoNuSeg annotation, blurred into a probability map with touching, clustered nuclei."""
    record = next(r for r in MoNuSeg(monuseg_root).records() if r.id.startswith("TCGA-A7"))
    instances = record.load().instances
    probability = ndimage.gaussian_filter((instances > 0).astype(np.float32), 1.5)
    probability = np.clip(probability + np.random.default_rng(0).normal(0, 0.05, probability.shape), 0, 1).astype(np.float16)
    settings = PostProcess(threshold=0.5, split="watershed")
    whole = probability_to_instances(probability, settings)
    assert whole.max() > 300
    assert_same_nuclei(by_strips(probability, settings, strip_rows=97, sizes=(128,)), whole)


def test_real_monuseg_touching_nuclei_by_marker_strips(monuseg_root):
    """A MoNuSeg annotation as three-class probabilities (its targets, blurred): the markers
    recover nearly every nucleus, strip by strip exactly as on the whole map."""
    from nuclei_tf.data.targets import three_class_targets
    from nuclei_tf.metrics import evaluate_instances

    record = next(r for r in MoNuSeg(monuseg_root).records() if r.id.startswith("TCGA-A7"))
    instances = record.load().instances
    targets = ndimage.gaussian_filter(three_class_targets(instances), (1.0, 1.0, 0))
    probabilities = np.stack([targets[..., 1], targets[..., 1] + targets[..., 2]], axis=-1).astype(np.float16)
    settings = PostProcess(threshold=0.5, split="markers", marker_threshold=0.5)
    whole = probability_to_instances(probabilities, settings)
    assert evaluate_instances(instances, whole)["aji"] > 0.8
    assert_same_nuclei(by_strips(probabilities, settings, strip_rows=97, sizes=(128,)), whole)


def cut_blocks(probability, sizes, row):
    """The blocks of ``blocks_of`` from the one holding ``row`` on, the first cut to start there."""
    for top, rows in blocks_of(probability, sizes):
        if top + len(rows) > row:
            yield max(top, row), rows[max(row - top, 0) :]


@pytest.mark.parametrize("strip_rows", [16, 61])
def test_resuming_after_any_strip_gives_the_same_strips(strip_rows):
    probability = blob_field((230, 170), seed=7)
    settings = PostProcess(threshold=0.55, split="watershed")
    strips = list(instance_strips(blocks_of(probability, (37,)), len(probability), settings, strip_rows))
    assert len(strips) > 3
    for k, stopped in enumerate(strips[:-1]):
        resumed = list(instance_strips(cut_blocks(probability, (37,), stopped.resume["row"]), len(probability), settings,
                                       strip_rows, resume=stopped.resume))
        assert len(resumed) == len(strips) - k - 1
        for a, b in zip(resumed, strips[k + 1 :]):
            assert (a.top, a.first_id, a.final, a.resume) == (b.top, b.first_id, b.final, b.resume)
            np.testing.assert_array_equal(a.labels, b.labels)
