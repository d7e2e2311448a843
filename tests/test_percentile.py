"""StarDist's per-image percentile normalisation, in training and in predict."""
import numpy as np
import pytest
import yaml

from nuclei_tf.data.pipeline import PipelineConfig, Prepared, TrainingPipeline, prepare
from nuclei_tf.preprocess.percentile import PercentileNormalizer


def test_percentiles_over_all_channels_by_hand():
    image = np.arange(1000, dtype=np.uint16).reshape(10, 100)[..., None].repeat(3, axis=-1)
    scaler = PercentileNormalizer()
    low, high = scaler.source_statistics(image)
    assert low == pytest.approx(9.99) and high == pytest.approx(997.002)  # linear interpolation: 3,000 values, index 2993.002
    scaled = scaler.transform(image)
    assert scaled.dtype == np.float32
    np.testing.assert_allclose(scaled, (image - 9.99) / (997.002 - 9.99), rtol=1e-5, atol=1e-6)
    assert scaled.min() < 0 < 1 < scaled.max(), "not clipped, as in csbdeep's normalize"
    colours = np.zeros((4, 4, 3), np.uint8)
    colours[..., 0] = 200  # the percentiles pool the channels
    assert scaler.source_statistics(colours) == (0.0, 200.0)
    np.testing.assert_array_equal(scaler.transform(np.full((5, 5, 3), 77, np.uint8)), 0.0)  # one grey level: no 0 / 0
    with pytest.raises(ValueError, match="percentiles must satisfy"):
        PercentileNormalizer(50, 10)


class Record:
    def __init__(self, image, instances):
        self.id, self.image_path, self.sample = "r", "r.png", type("S", (), {"image": image, "instances": instances})

    def load(self):
        return self.sample


def test_training_tiles_are_scaled_by_their_whole_image_percentiles():
    rng = np.random.default_rng(0)
    image = rng.integers(40, 200, (80, 80, 3), dtype=np.uint8)
    image[:10] = 250  # bright rows outside the first tile still set the scale
    instances = np.zeros((80, 80), np.int32)
    instances[20:30, 20:30] = 1
    config = PipelineConfig(tile=32, normalize="percentile", weight_maps=False, augment={})
    prepared, = prepare([Record(image, instances)], config)
    assert prepared.intensity == PercentileNormalizer().source_statistics(image)
    pipeline = TrainingPipeline(prepared and [prepared], config, training=False)
    tile, _, _ = pipeline.example(0, 0, pipeline.items(0)[0])
    np.testing.assert_allclose(tile, PercentileNormalizer().apply(image[:32, :32], prepared.intensity), rtol=1e-6)
    plain = TrainingPipeline([Prepared("r", image, instances > 0, None)], PipelineConfig(tile=32, augment={}), training=False)
    np.testing.assert_allclose(plain.example(0, 0, plain.items(0)[0])[0], image[:32, :32] / 255.0, rtol=1e-6)
    with pytest.raises(ValueError, match="normalize must be one of"):
        PipelineConfig(normalize="zscore")


def test_one_normalisation_at_a_time(tmp_path):
    from nuclei_tf.train.config import load_config

    (tmp_path / "both.yaml").write_text(yaml.safe_dump({"data": {"normalize": "percentile"}, "preprocess": {"stain": "macenko"}}))
    with pytest.raises(ValueError, match="two input normalisations; choose one"):
        load_config(tmp_path / "both.yaml")
    assert load_config(tmp_path / "both.yaml", {"preprocess": {"stain": "none"}})["data"]["normalize"] == "percentile"


def test_predict_scales_by_the_image_percentiles(tmp_path):
    from nuclei_tf.inference import ModelBundle, load_bundle, save_bundle
    from nuclei_tf.inference.predict import predict_probability

    from conftest import darkness_model

    rng = np.random.default_rng(1)
    image = rng.integers(90, 160, (64, 64, 3), dtype=np.uint8)
    bundle = load_bundle(save_bundle(ModelBundle(darkness_model(), tile=64, stain="percentile"), tmp_path / "m"))
    assert bundle.stain == "percentile"
    expected = predict_probability(ModelBundle(darkness_model(), tile=64), PercentileNormalizer().transform(image))
    np.testing.assert_allclose(predict_probability(bundle, image), expected, atol=1e-3)
    assert not np.allclose(predict_probability(ModelBundle(darkness_model(), tile=64), image), expected, atol=1e-2)
