"""tf.data pipeline: shapes, joint augmentation, determinism, resume, bad input."""
import numpy as np
import pytest

from nuclei_tf.data import DataError, InstanceFolder
from nuclei_tf.data.pipeline import PipelineConfig, TrainingPipeline, example_seed, prepare
from nuclei_tf.preprocess.augment import Augmenter, kasturi_variants

from conftest import disk_instances


@pytest.fixture
def records(synthetic_folder):
    return InstanceFolder(synthetic_folder).records()


@pytest.mark.parametrize("classes", [2, 3])
def test_batches_have_the_documented_shapes(records, classes):
    config = PipelineConfig(tile=16, overlap=0.5, batch_size=4, classes=classes)
    pipeline = TrainingPipeline(prepare(records, config), config)
    image, target, weights = next(iter(pipeline.dataset(0)))
    assert image.shape == (4, 16, 16, 3) and target.shape == (4, 16, 16, classes) and weights.shape == (4, 16, 16, 1)
    assert 0.0 <= float(np.min(image)) and float(np.max(image)) <= 1.0
    assert np.allclose(np.sum(target, axis=-1), 1.0)
    assert pipeline.steps(0) == len(pipeline.items(0)) // 4


def test_augmentation_moves_weights_with_the_mask_and_never_recolours_them():
    mask = (disk_instances((64, 64), [(20, 30)], 8) > 0).astype(np.uint8)
    weights = np.where(mask > 0, 2.5, 1.0).astype(np.float32)
    image = np.dstack([mask * 200] * 3).astype(np.uint8)
    augment = Augmenter({"affine": {"p": 1.0, "rotate": [30, 30]}, "brightness_contrast": {"p": 1.0, "brightness_limit": [0.3, 0.3]}})
    out_image, out_mask, out_weights = augment(image, mask, weights, seed=1)
    assert set(np.unique(out_weights)) <= {1.0, 2.5}, "weight map values must only move, never be changed"
    assert np.array_equal(out_weights == 2.5, out_mask > 0)
    assert not np.array_equal(out_mask, mask)
    again = augment(image, mask, weights, seed=1)
    assert all(np.array_equal(a, b) for a, b in zip((out_image, out_mask, out_weights), again))


def test_epochs_are_deterministic_and_resumable(records):
    config = PipelineConfig(tile=16, overlap=0.25, batch_size=2, seed=3)
    pipeline = TrainingPipeline(prepare(records, config), config)
    first = [b[0].numpy() for b in pipeline.dataset(1)]
    again = [b[0].numpy() for b in pipeline.dataset(1)]
    resumed = [b[0].numpy() for b in pipeline.dataset(1, skip_batches=2)]
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert all(np.array_equal(a, b) for a, b in zip(first[2:], resumed))
    other_epoch = [b[0].numpy() for b in pipeline.dataset(2)]
    assert not all(np.array_equal(a, b) for a, b in zip(first, other_epoch))


def test_validation_stream_is_a_plain_grid(records):
    config = PipelineConfig(tile=16, batch_size=3)
    pipeline = TrainingPipeline(prepare(records, config), config, training=False)
    assert [tuple(i) for i in pipeline.items(0)[:3]] == [(0, 0, 0), (0, 0, 16), (0, 16, 0)]
    assert sum(b[0].shape[0] for b in pipeline.dataset(0)) == 8 and pipeline.steps() == 3


def test_random_whole_and_offline_modes(records):
    random = PipelineConfig(tile=16, sampling="random", crops_per_image=3, min_foreground=0.1, batch_size=2)
    assert len(TrainingPipeline(prepare(records, random), random).items(0)) == 6
    whole = PipelineConfig(sampling="whole", resize=24, batch_size=2)
    image, _, _ = next(iter(TrainingPipeline(prepare(records, whole), whole).dataset(0)))
    assert image.shape == (2, 24, 24, 3)
    offline = PipelineConfig(sampling="whole", offline="kasturi2022", offline_size=32, batch_size=2)
    prepared = prepare(records, offline)
    assert [p.id for p in prepared[:3]] == ["a#0", "a#1", "a#2"] and prepared[0].image.shape == (32, 32, 3)


def test_three_class_targets_come_from_the_augmented_instance_map():
    from scipy import ndimage

    from nuclei_tf.data.pipeline import Prepared
    from nuclei_tf.data.targets import three_class_targets
    from nuclei_tf.preprocess.weight_map import weight_map

    instances = np.zeros((40, 40), np.int32)
    instances[8:32, 6:20] = 4
    instances[8:32, 20:34] = 9  # two nuclei touching along a vertical line
    image = np.dstack([np.where(instances > 0, 90, 220).astype(np.uint8)] * 3)
    augment = {"affine": {"p": 1.0, "rotate": [30, 30]}}
    config = PipelineConfig(tile=40, classes=3, boundary_width=2, augment=augment, batch_size=1)
    pipeline = TrainingPipeline([Prepared("two", image, instances, weight_map(instances))], config)
    _, target, weights = pipeline.example(0, 0, (0, 0, 0))
    _, moved, moved_weights = Augmenter(augment)(image, instances, weight_map(instances), seed=example_seed(0, 0, 0))
    assert set(np.unique(moved)) == {0, 4, 9}, "ids move by nearest neighbour"
    np.testing.assert_array_equal(target, three_class_targets(moved, 2))
    np.testing.assert_array_equal(weights[..., 0], moved_weights)
    blobs = ndimage.label(target[..., 0] == 0)[0]
    assert ndimage.label(target[..., 1] > 0, structure=np.ones((3, 3)))[1] == 2
    assert len(np.unique(blobs[target[..., 1] > 0])) == 1, "the boundary parts two interiors in one blob"
    _, batch_target, _ = next(iter(pipeline.dataset(0)))
    assert batch_target.shape == (1, 40, 40, 3)
    with pytest.raises(ValueError, match="boundary_width must be >= 1"):
        PipelineConfig(classes=3, boundary_width=0)


def test_kasturi_variants_keep_instance_ids():
    instances = disk_instances((64, 64), [(20, 20), (40, 44)], 6)
    image = np.dstack([instances.astype(np.uint8) * 100] * 3)
    variants = kasturi_variants(image, instances, size=32)
    assert len(variants) == 3
    for _, labels in variants:
        assert labels.shape == (32, 32) and set(np.unique(labels)) == {0, 1, 2}
    assert np.array_equal(kasturi_variants(image, instances, 64)[0][1], instances[:, ::-1])


def test_image_without_nuclei_trains_with_class_weights_only(tmp_path):
    from PIL import Image

    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    Image.fromarray(np.full((32, 32, 3), 230, np.uint8)).save(tmp_path / "images" / "empty.png")
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / "labels" / "empty.png")
    config = PipelineConfig(tile=16, batch_size=2)
    prepared = prepare(InstanceFolder(tmp_path).records(), config)
    assert np.all(prepared[0].weights == 1.0)
    _, target, weights = next(iter(TrainingPipeline(prepared, config).dataset(0)))
    assert float(np.max(target)) == 0.0 and float(np.min(weights)) >= 0.0


def test_nan_from_preprocessing_is_rejected_naming_the_image(records):
    def broken(image):
        out = image.astype(np.float32) / 255
        out[0, 0, 0] = np.nan
        return out

    with pytest.raises(DataError, match=r"a\.png: holds NaN or Inf"):
        prepare(records, PipelineConfig(tile=16), preprocess=broken)


def test_weight_maps_are_cached_on_disk(records, tmp_path):
    config = PipelineConfig(tile=16)
    first = prepare(records, config, cache_dir=tmp_path)
    cached = sorted(tmp_path.glob("weights-*.npy"))
    assert len(cached) == 1  # both label maps are identical
    np.save(cached[0], np.full((32, 32), 7.0, np.float32))
    assert np.all(prepare(records, config, cache_dir=tmp_path)[0].weights == 7.0)
    assert not np.all(first[0].weights == 7.0)


def test_bad_configs():
    with pytest.raises(ValueError, match="sampling"):
        PipelineConfig(sampling="tiles")
    with pytest.raises(ValueError, match="needs resize"):
        PipelineConfig(sampling="whole")
    with pytest.raises(ValueError, match="unknown augmentation"):
        Augmenter({"mixup": {}})(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.float32), 0)


def test_config_preprocessing_steps(records):
    from nuclei_tf.preprocess.configured import make_preprocess

    assert make_preprocess({"stain": "none"}) is None
    clahe = make_preprocess({"stain": "none", "clahe_tv": True})
    prepared = prepare(records, PipelineConfig(tile=16), preprocess=clahe)
    assert prepared[0].image.dtype == np.float32 and 0.0 <= prepared[0].image.min() and prepared[0].image.max() <= 1.0
    image, _, _ = next(iter(TrainingPipeline(prepared, PipelineConfig(tile=16, batch_size=2)).dataset(0)))
    assert image.shape == (2, 16, 16, 3)
    with pytest.raises(ValueError, match="needs preprocess.reference"):
        make_preprocess({"stain": "vahadane"})
    with pytest.raises(ValueError, match="must be none, macenko"):
        make_preprocess({"stain": "magic"})


def test_long2020_grid_plus_random_crops_zero_padding_and_no_weight_maps(records):
    """Long 2020's patches: the edge-re-cropped grid plus random crops above a foreground ratio."""
    grid = PipelineConfig(tile=16, sampling="grid", overlap=0.0, batch_size=2)
    both = PipelineConfig(tile=16, sampling="grid_random", overlap=0.0, crops_per_image=3, min_foreground=0.1,
                          batch_size=2, weight_maps=False, pad="constant")
    prepared = prepare(records, both)
    assert all(p.weights is None for p in prepared)
    grid_items = TrainingPipeline(prepare(records, grid), grid).items(0)
    items = TrainingPipeline(prepared, both).items(0)
    assert len(items) == len(grid_items) + 6
    assert {tuple(i) for i in grid_items} <= {tuple(i) for i in items}
    _, _, weights = TrainingPipeline(prepared, both).example(0, 0, items[0])
    assert np.all(weights == 1.0)
    val = TrainingPipeline(prepared, both, training=False)
    assert [tuple(i) for i in val.items(0)] == [tuple(i) for i in TrainingPipeline(prepare(records, grid), grid, training=False).items(0)]
    small = PipelineConfig(tile=48, sampling="grid", pad="constant", weight_maps=False, augment={})
    image, target, _ = TrainingPipeline(prepare(records, small), small).example(0, 0, (0, 0, 0))
    assert image.shape == (48, 48, 3) and np.all(image[32:] == 0) and np.all(image[:, 32:] == 0)
    assert np.all(target[32:] == 0)
    with pytest.raises(ValueError, match="pad must be one of"):
        PipelineConfig(pad="wrap")


def test_long2020_blur_augmentations_on_float_images():
    image = np.random.default_rng(0).random((32, 32, 3)).astype(np.float32)
    mask = np.zeros((32, 32), np.uint8)
    for name in ("median_blur", "average_blur", "blur"):
        out, out_mask, _ = Augmenter({name: {"p": 1.0, "blur_limit": [3, 5]}})(image, mask, mask.astype(np.float32), seed=2)
        assert out.dtype == np.float32 and out.shape == image.shape and not np.allclose(out, image)


def test_hed_stain_jitter_is_deterministic_colour_only_and_the_identity_at_zero():
    from skimage.color import rgb2hed

    image = np.random.default_rng(0).integers(30, 230, (32, 32, 3), dtype=np.uint8)
    mask, weights = np.eye(32, dtype=np.uint8), np.linspace(1, 2, 32 * 32, dtype=np.float32).reshape(32, 32)
    identity = Augmenter({"hed_jitter": {"p": 1.0, "sigma": 0.0, "bias": 0.0}})
    np.testing.assert_array_equal(identity(image, mask, weights, 1)[0], image)
    jitter = Augmenter({"hed_jitter": {"p": 1.0, "sigma": 0.1, "bias": 0.0}})
    a, m, w = jitter(image, mask, weights, 7)
    np.testing.assert_array_equal(a, jitter(image, mask, weights, 7)[0])
    assert not np.array_equal(a, jitter(image, mask, weights, 8)[0]) and np.array_equal(m, mask) and np.array_equal(w, weights)
    before = rgb2hed(image)[..., 0]
    strong = np.abs(before) > 0.05
    ratio = rgb2hed(a)[..., 0][strong] / before[strong]  # a pure scale of the haematoxylin channel
    assert 0.9 <= np.median(ratio) <= 1.1 and np.std(ratio) < 0.05
    floats = jitter(image.astype(np.float32) / 255, mask, weights, 7)[0]
    assert floats.dtype == np.float32 and np.abs(floats * 255 - a).max() <= 0.51
    with pytest.raises(ValueError, match="sigma and bias must be >= 0"):
        Augmenter({"hed_jitter": {"sigma": -1}})(image, mask, weights, 1)
