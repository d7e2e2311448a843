"""The hv head (HoVer-Net, Graham et al. 2019): distance-map targets, loss, post-processing."""
import numpy as np
import pytest
from scipy import ndimage

from nuclei_tf.data.hv_targets import hv_maps, hv_targets
from nuclei_tf.postprocess import PostProcess, probability_to_instances
from nuclei_tf.postprocess.hover import derivative_kernels, interiorness, reduce_hv
from nuclei_tf.postprocess.strips import HALO

from test_strips import assert_same_nuclei, by_strips


def slow_hv_maps(instances):
    """One nucleus at a time, as the paper describes it."""
    maps = np.zeros(instances.shape + (2,), np.float64)
    for label in np.unique(instances[instances > 0]):
        rows, cols = np.nonzero(instances == label)
        for channel, coordinate in enumerate((cols, rows)):
            distance = coordinate - coordinate.mean()
            scaled = np.zeros_like(distance)
            if (distance > 0).any():
                scaled[distance > 0] = distance[distance > 0] / distance[distance > 0].max()
            if (distance < 0).any():
                scaled[distance < 0] = distance[distance < 0] / -distance[distance < 0].min()
            maps[rows, cols, channel] = scaled
    return maps


def touching_nuclei(shape=(100, 140)):
    """Two touching discs (radii 15 and 14) and a small one apart."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    instances = np.zeros(shape, np.int32)
    instances[(yy - 50) ** 2 + (xx - 45) ** 2 <= 15**2] = 1
    instances[((yy - 50) ** 2 + (xx - 72) ** 2 <= 14**2) & (instances == 0)] = 2
    instances[(yy - 20) ** 2 + (xx - 110) ** 2 <= 8**2] = 3
    return instances


def random_nuclei(shape, seed, count=40):
    """Touching random discs and ellipses (later ones on top)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    instances = np.zeros(shape, np.int32)
    for label in range(1, count + 1):
        cy, cx = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
        ry, rx = rng.uniform(5, 14, 2)
        instances[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1] = label
    return instances


def test_distance_maps_by_hand():
    instances = np.zeros((3, 8), np.int32)
    instances[1, 2:7] = 4  # a bar of 5 px: centre at x = 4
    instances[0, 0:4] = 9  # 4 px: centre at x = 1.5
    maps = hv_maps(instances)
    np.testing.assert_allclose(maps[1, 2:7, 0], [-1, -0.5, 0, 0.5, 1])
    np.testing.assert_allclose(maps[0, 0:4, 0], [-1, -1 / 3, 1 / 3, 1], rtol=1e-6)
    assert not maps[..., 1].any(), "one row: no vertical distance"
    assert not maps[instances == 0].any()
    targets = hv_targets(instances)
    assert targets.shape == (3, 8, 4) and targets.dtype == np.float32
    np.testing.assert_array_equal(targets[..., 3], instances > 0)
    np.testing.assert_array_equal(targets[..., 2] + targets[..., 3], 1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_distance_maps_equal_the_slow_implementation(seed):
    instances = random_nuclei((90, 110), seed)
    instances[instances == 7] = 1000  # ids need not be contiguous
    np.testing.assert_allclose(hv_maps(instances), slow_hv_maps(instances), atol=1e-6)
    assert hv_maps(instances).min() == -1 and hv_maps(instances).max() == 1


DIHEDRAL = [
    ("flip left-right", np.fliplr, lambda h, v: (-h, v)),
    ("flip up-down", np.flipud, lambda h, v: (h, -v)),
    ("turn 90", np.rot90, lambda h, v: (v, -h)),
    ("turn 180", lambda a: np.rot90(a, 2), lambda h, v: (-h, -v)),
    ("turn 270", lambda a: np.rot90(a, 3), lambda h, v: (-v, h)),
    ("transpose", lambda a: np.swapaxes(a, 0, 1), lambda h, v: (v, h)),
]


@pytest.mark.parametrize("name, move, signs", DIHEDRAL, ids=[d[0] for d in DIHEDRAL])
def test_flips_and_rotations_move_the_maps_with_their_signs(name, move, signs):
    instances = random_nuclei((64, 80), 3)
    h, v = (move(hv_maps(instances)[..., c]) for c in (0, 1))
    expected_h, expected_v = signs(h, v)
    moved = hv_maps(np.ascontiguousarray(move(instances)))
    np.testing.assert_allclose(moved[..., 0], expected_h, atol=1e-6)
    np.testing.assert_allclose(moved[..., 1], expected_v, atol=1e-6)


def test_augmented_training_targets_point_away_from_each_centre():
    """Targets built after augmentation: in every augmented tile h grows with x and v with y inside
    each nucleus, whatever the flips, turns and affine moves did."""
    from nuclei_tf.data.pipeline import PipelineConfig, Prepared, TrainingPipeline

    yy, xx = np.mgrid[:96, :96]
    instances = np.zeros((96, 96), np.int32)
    for label, (cy, cx) in enumerate(((y, x) for y in (14, 46, 78) for x in (14, 46, 78)), start=1):
        instances[((yy - cy) / 11) ** 2 + ((xx - cx) / 8) ** 2 <= 1] = label  # ellipses apart from each other
    image = np.where(instances[..., None] > 0, 60, 220).astype(np.uint8).repeat(3, axis=-1)
    augment = {"flip_h": {"p": 0.5}, "flip_v": {"p": 0.5}, "rotate90": {"p": 0.5},
               "affine": {"p": 1.0, "translate_percent": [-0.05, 0.05], "scale": [0.9, 1.1], "rotate": [-45, 45], "shear": [0, 0]}}
    config = PipelineConfig(tile=64, classes=4, augment=augment, weight_maps=False, batch_size=1)
    pipeline = TrainingPipeline([Prepared("a", image, instances, None)], config)
    checked = 0
    for position in range(8):
        _, target, _ = pipeline.example(0, position, pipeline.items(0)[0])
        labels, count = ndimage.label(target[..., 3] > 0)
        yy, xx = np.mgrid[: target.shape[0], : target.shape[1]]
        for label in range(1, count + 1):
            inside = labels == label
            if inside.sum() < 30:
                continue
            assert np.corrcoef(xx[inside], target[..., 0][inside])[0, 1] > 0.8
            assert np.corrcoef(yy[inside], target[..., 1][inside])[0, 1] > 0.8
            checked += 1
    assert checked > 10


def test_hover_loss_is_zero_for_the_targets_and_adds_the_gradient_error():
    from nuclei_tf.train.losses import hover_loss

    instances = random_nuclei((48, 48), 4, count=6)
    truth = hv_targets(instances)[None]
    assert float(hover_loss(truth, truth)) < 1e-3
    # h off by a ramp of slope s: MSE = mean((s x)^2) / 2; its x-gradient is off by s on every
    # pixel (the 5 x 5 kernel gives a ramp's slope exactly away from the border), so MSGE = s^2 / 2
    slope = 0.01
    ramp = slope * np.arange(48, dtype=np.float32)[None, None, :]
    predicted = truth.copy()
    predicted[..., 0] += ramp
    nucleus = instances > 0
    nucleus[:, :2] = nucleus[:, -2:] = False  # keep the focus off the border columns
    truth_inner = truth.copy()
    truth_inner[0, ..., 3] = nucleus
    truth_inner[0, ..., 2] = ~nucleus
    predicted[0, ..., 2:] = truth_inner[0, ..., 2:]
    expected_mse = np.mean(np.broadcast_to(ramp, (1, 48, 48)) ** 2) / 2
    gap = float(hover_loss(truth_inner, predicted)) - float(hover_loss(truth_inner, truth_inner))
    np.testing.assert_allclose(gap, expected_mse + 2 * slope**2 / 2, rtol=1e-3)
    with pytest.raises(ValueError, match="hv head's 4 channels"):
        hover_loss(truth[..., :3], truth[..., :3])


def test_energy_kernels_are_hovernets_sobel():
    import cv2

    derivative, smooth = cv2.getDerivKernels(1, 0, 21)
    along_x, along_y = derivative_kernels(21)
    sobel = np.outer(smooth, derivative)
    np.testing.assert_allclose(along_x, sobel / np.sum(sobel * (np.arange(21) - 10)[None, :]), rtol=1e-6)  # cv2: float32
    np.testing.assert_array_equal(along_y, along_x.T)
    ramp = np.tile(np.arange(31.0), (31, 1))
    assert ndimage.correlate(ramp, derivative_kernels(5)[0])[15, 15] == pytest.approx(1.0)


@pytest.mark.parametrize("name, move, signs", DIHEDRAL, ids=[d[0] for d in DIHEDRAL])
def test_interiorness_is_unchanged_by_flips_and_turns(name, move, signs):
    """What lets test-time augmentation average the reduced map as it is."""
    instances = random_nuclei((70, 90), 6)
    moved = hv_maps(np.ascontiguousarray(move(instances)))
    np.testing.assert_allclose(interiorness(moved), move(interiorness(hv_maps(instances))), atol=1e-5)


def test_ideal_maps_give_back_touching_nuclei():
    instances = touching_nuclei()
    reduced = reduce_hv(hv_targets(instances))
    assert reduced.shape == instances.shape + (2,) and reduced.dtype == np.float32
    inside = interiorness(hv_maps(instances))
    assert inside[50, 58:60].max() < 0.3 < 0.55 < inside[50, 45], "low where the two touch, high at a centre"
    merged = probability_to_instances(reduced, PostProcess(threshold=0.5))
    assert merged.max() == 2, "without markers the touching pair is one"
    for opening in (0, 2):
        found = probability_to_instances(reduced, PostProcess(split="markers", threshold=0.5, marker_threshold=0.5,
                                                              marker_opening=opening))
        assert found.max() == 3
        for label in (1, 2, 3):
            best = np.bincount(found[instances == label]).argmax()
            overlap = np.logical_and(found == best, instances == label).sum() / np.logical_or(found == best, instances == label).sum()
            assert overlap > 0.9
    np.testing.assert_array_equal(probability_to_instances(hv_targets(instances), PostProcess(split="markers")),
                                  probability_to_instances(reduced, PostProcess(split="markers")))


def test_marker_opening_cuts_a_thin_bridge():
    """Two markers joined by a 2 px bridge are one seed; HoVer-Net's opening parts them."""
    mask = np.zeros((40, 60), bool)
    mask[8:32, 6:54] = True
    interior = np.zeros((40, 60), np.float32)
    interior[12:28, 10:26] = interior[12:28, 34:50] = 1.0
    interior[19:21, 26:34] = 1.0
    reduced = np.stack([interior, mask.astype(np.float32)], axis=-1)
    settings = PostProcess(split="markers", marker_threshold=0.5)
    assert probability_to_instances(reduced, settings).max() == 1
    assert probability_to_instances(reduced, PostProcess(split="markers", marker_threshold=0.5, marker_opening=2)).max() == 2
    with pytest.raises(ValueError, match="marker_opening needs split 'markers'"):
        PostProcess(marker_opening=2)
    with pytest.raises(ValueError, match=r"marker_opening must lie in 0\.\.4"):
        PostProcess(split="markers", marker_opening=5)


def noisy_hv_outputs(shape, seed):
    """HV-head-like outputs of random touching nuclei: noisy maps and NP probability."""
    rng = np.random.default_rng(seed)
    targets = hv_targets(random_nuclei(shape, seed, count=60))
    targets[..., :2] += rng.normal(0, 0.15, shape + (2,))
    nucleus = np.clip(ndimage.gaussian_filter(targets[..., 3], 1.5) + rng.normal(0, 0.1, shape), 0, 1)
    targets[..., 3], targets[..., 2] = nucleus, 1 - nucleus
    return targets.astype(np.float32)


@pytest.mark.parametrize("settings", [
    PostProcess(threshold=0.5, split="markers", marker_threshold=0.52, marker_opening=2),
    PostProcess(threshold=0.4, split="markers", marker_threshold=0.5, marker_opening=2, require_marker=True, min_marker_size=10),
    PostProcess(threshold=0.5, split="markers", marker_threshold=0.54, fill=False, min_size=1),
])
@pytest.mark.parametrize("strip_rows", [HALO + 1, 23, 1000])
def test_hv_strips_equal_the_whole_image(settings, strip_rows):
    reduced = reduce_hv(noisy_hv_outputs((200, 150), strip_rows)).astype(np.float16)
    whole = probability_to_instances(reduced, settings)
    clusters = ndimage.label(reduced[..., 1] > settings.threshold)[1]
    assert whole.max() > clusters + 5, "markers split clusters"
    assert_same_nuclei(by_strips(reduced, settings, strip_rows), whole)
