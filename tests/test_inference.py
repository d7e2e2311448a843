"""Prediction on any image size in bounded memory, output files, model folders, TF Serving export."""
import csv
import json
from dataclasses import replace
import subprocess
import sys
import tracemalloc
from pathlib import Path

import keras
import numpy as np
import pytest
import tifffile
from click.testing import CliRunner
from PIL import Image

from nuclei_tf.cli.main import cli
from nuclei_tf.data.errors import DataError
from nuclei_tf.inference import ModelBundle, load_bundle, predict_probability, save_bundle, segment
from nuclei_tf.inference.outputs import CSV_COLUMNS, MEASUREMENTS, write_outputs, write_segmentation
from nuclei_tf.inference.predict import segment_strips
from nuclei_tf.inference.tile_budget import activation_bytes_per_pixel, margin_tile
from nuclei_tf.inference.folder_config import pixel_postprocess, read_folder_config
from nuclei_tf.postprocess.strips import InstanceStrip
from nuclei_tf.models import build_model
from nuclei_tf.postprocess import PostProcess, probability_to_instances
from nuclei_tf.postprocess.markers import nucleus_outputs, reduce_three_class
from nuclei_tf.preprocess.tiling import extract_tiles, stitch

from conftest import darkness_model, disk_instances, three_class_darkness_model


def red_channel_model():
    """A 1x1 convolution returning the red channel: prediction = input, to check stitching exactly."""
    inputs = keras.Input((None, None, 3))
    outputs = keras.layers.Conv2D(1, 1, use_bias=False, kernel_initializer=keras.initializers.Constant([[[[1.0], [0.0], [0.0]]]]))(inputs)
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("shape", [(10, 7, 3), (64, 64, 3), (300, 170, 3)])
@pytest.mark.parametrize("blend", ["mean", "smooth"])
def test_streamed_stitching_returns_the_image(shape, blend):
    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    bundle = ModelBundle(red_channel_model(), tile=64, overlap=0.5, blend=blend)
    probability = predict_probability(bundle, image, batch_size=3)
    assert probability.shape == shape[:2] and probability.dtype == np.float16
    np.testing.assert_array_equal(probability, (image[..., 0] / 255.0).astype(np.float16))


@pytest.mark.parametrize("head", ["foreground", "three_class"])
def test_streamed_prediction_matches_whole_array_stitching(head):
    model = build_model("unet_plus", base_filters=4, depth=3, head=head)
    image = np.random.default_rng(1).integers(0, 256, (150, 200, 3), dtype=np.uint8)
    bundle = ModelBundle(model, tile=64, overlap=0.5, blend="smooth")
    tiles, starts = extract_tiles(image, 64, 0.5)
    expected = stitch(nucleus_outputs(np.asarray(model(tiles / 255.0))), starts, image.shape[:2], "smooth")
    np.testing.assert_allclose(predict_probability(bundle, image).astype(np.float32), expected, atol=1e-3)


def peak_bytes(bundle, shape):
    image = np.full(shape, 200, np.uint8)
    tracemalloc.start()
    predict_probability(bundle, image, batch_size=8)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def test_memory_grows_only_by_the_float16_output():
    """Doubling the image height adds its float16 probability rows (2 bytes/pixel) and nothing else:
    tiles and blending buffers are one tile row high, whatever the image size."""
    bundle = ModelBundle(red_channel_model(), tile=256, overlap=0.5, blend="smooth")
    small, large = peak_bytes(bundle, (1024, 1024, 3)), peak_bytes(bundle, (3072, 1024, 3))
    added_pixels = 2048 * 1024
    assert (large - small) / added_pixels == pytest.approx(2.0, abs=0.2)


def streamed_peak_bytes(bundle, image, out):
    tracemalloc.start()
    write_segmentation(image, segment_strips(bundle, image, strip_rows=256), out, "img")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def test_streamed_prediction_and_outputs_hold_no_full_size_map(tmp_path):
    """What `nuclei-tf predict` runs: tripling the image height adds no per-pixel memory beyond the
    input image (a full probability + label map would add 6 bytes/pixel, the overlay 3)."""
    bundle = ModelBundle(red_channel_model(), tile=256, overlap=0.5, postprocess=PostProcess(split="watershed"))
    cell = np.zeros((64, 64, 3), np.uint8)
    cell[..., 0] = (disk_instances((64, 64), [(32, 32)], 12) > 0) * 230
    small, large = np.tile(cell, (16, 16, 1)), np.tile(cell, (48, 16, 1))
    streamed_peak_bytes(bundle, small, tmp_path / "warm-up")  # the one-time tf.function trace
    growth = -streamed_peak_bytes(bundle, small, tmp_path / "small") + streamed_peak_bytes(bundle, large, tmp_path / "large")
    assert growth / (large.shape[0] - small.shape[0]) / large.shape[1] < 0.25
    assert tifffile.imread(tmp_path / "large" / "img.labels.tif").max() == 48 * 16


def test_output_files(tmp_path):
    instances = disk_instances((40, 50), [(10, 10), (28, 35)], 5)
    instances[0, 0] = 3  # a one-pixel nucleus
    image = np.full((40, 50, 3), 200, np.uint8)
    paths = write_outputs(image, instances, tmp_path, "img")
    np.testing.assert_array_equal(tifffile.imread(paths["labels"]), instances)
    assert np.asarray(Image.open(paths["overlay"])).shape == (40, 50, 3)
    features = json.loads(paths["geojson"].read_text())["features"]
    assert [f["properties"]["label"] for f in features] == [1, 2, 3]
    ring = features[0]["geometry"]["coordinates"][0]
    assert ring[0] == ring[-1] and all(4 <= x <= 16 and 4 <= y <= 16 for x, y in ring)
    rows = list(csv.DictReader(open(paths["csv"])))
    assert [r["id"] for r in rows] == ["1", "2", "3"] and float(rows[1]["centroid_x"]) == pytest.approx(35.5)  # pixel centres
    assert tuple(rows[0]) == CSV_COLUMNS and rows[0]["area_um2"] == rows[0]["perimeter_um"] == "" and rows[2]["area_px"] == "1"
    assert set(features[0]["properties"]["measurements"]) == set(MEASUREMENTS) - {"area_um2", "perimeter_um"}
    known = write_outputs(image, instances, tmp_path / "known", "img", mpp=0.5)  # a resolution: the um columns too
    row = next(csv.DictReader(open(known["csv"])))
    assert float(row["area_um2"]) == pytest.approx(0.25 * float(row["area_px"]), rel=1e-5)
    assert float(row["perimeter_um"]) == pytest.approx(0.5 * float(row["perimeter_px"]), rel=1e-5)
    assert set(json.loads(known["geojson"].read_text())["features"][0]["properties"]["measurements"]) == set(MEASUREMENTS)
    empty = write_outputs(image, np.zeros((40, 50), np.int32), tmp_path, "empty")
    assert json.loads(empty["geojson"].read_text())["features"] == [] and len(list(csv.reader(open(empty["csv"])))) == 1
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".partial") == []


@pytest.fixture
def tiny_bundle_dir(tmp_path):
    bundle = ModelBundle(build_model("unet_plus", base_filters=4, depth=3), tile=32, overlap=0.25,
                         postprocess=PostProcess(threshold=0.4, split="watershed"), info={"description": "test"})
    return save_bundle(bundle, tmp_path / "model")


def test_model_folder_round_trip(tiny_bundle_dir):
    bundle = load_bundle(tiny_bundle_dir)
    assert bundle.tile == 32 and bundle.postprocess.threshold == 0.4 and bundle.info["description"] == "test"
    probability, instances = segment(bundle, np.full((40, 40, 3), 128, np.uint8))
    assert probability.shape == instances.shape == (40, 40)


def test_predict_cli_on_rgba_grey_and_corrupt_images(tiny_bundle_dir, tmp_path):
    rgba = np.dstack([np.random.default_rng(0).integers(0, 255, (40, 60, 3), dtype=np.uint8), np.full((40, 60), 255, np.uint8)])
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    Image.fromarray(np.full((33, 45), 90, np.uint8)).save(tmp_path / "grey.png")
    result = CliRunner().invoke(cli, ["predict", str(tmp_path / "rgba.png"), str(tmp_path / "grey.png"),
                                      "--model", str(tiny_bundle_dir), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    for stem in ("rgba", "grey"):
        for suffix in (".labels.tif", ".overlay.png", ".geojson", ".csv"):
            assert (tmp_path / "out" / f"{stem}{suffix}").is_file()
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    bad = CliRunner().invoke(cli, ["predict", str(tmp_path / "bad.png"), "--model", str(tiny_bundle_dir), "--out", str(tmp_path / "o")])
    assert bad.exit_code == 1 and "bad.png: " in bad.output and "cannot be decoded" in bad.output and "Traceback" not in bad.output


def test_predict_cli_names_the_image_when_the_model_outputs_nan(tmp_path):
    inputs = keras.Input((None, None, 3))
    outputs = keras.layers.Conv2D(1, 1, kernel_initializer=keras.initializers.Constant(float("nan")))(inputs)
    folder = save_bundle(ModelBundle(keras.Model(inputs, outputs), tile=32), tmp_path / "nan-model")
    Image.fromarray(np.full((40, 40, 3), 100, np.uint8)).save(tmp_path / "slide.png")
    result = CliRunner().invoke(cli, ["predict", str(tmp_path / "slide.png"), "--model", str(folder), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and f"{tmp_path / 'slide.png'}: probability map holds NaN or Inf" in result.output
    assert "Traceback" not in result.output and list((tmp_path / "out").iterdir()) == []


def test_export_for_tf_serving_in_a_fresh_process(tiny_bundle_dir, tmp_path):
    result = CliRunner().invoke(cli, ["export", str(tiny_bundle_dir), "--out", str(tmp_path / "serving")])
    assert result.exit_code == 0, result.output
    version = tmp_path / "serving" / "1"
    assert (version / "saved_model.pb").is_file()
    image = np.random.default_rng(2).integers(0, 256, (2, 50, 70, 3), dtype=np.uint8)
    np.save(tmp_path / "x.npy", image)
    script = (
        "import sys, numpy as np, tensorflow as tf;"
        f"m = tf.saved_model.load(r'{version}');"
        f"y = m.signatures['serving_default'](images=tf.constant(np.load(r'{tmp_path / 'x.npy'}')))['probabilities'];"
        f"np.save(r'{tmp_path / 'y.npy'}', y.numpy())"
    )
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True)
    served = np.load(tmp_path / "y.npy")
    model = load_bundle(tiny_bundle_dir).model
    padded = np.pad(image / 255.0, [(0, 0), (0, 14), (0, 26), (0, 0)], constant_values=1.0)
    np.testing.assert_allclose(served, np.asarray(model(padded))[:, :50, :70], atol=1e-5)
    described = subprocess.run([str(__import__("pathlib").Path(sys.executable).with_name("saved_model_cli")), "show",
                                "--dir", str(version), "--all"], capture_output=True, text=True, check=True).stdout
    assert "serving_default" in described and "images" in described and "probabilities" in described
    again = CliRunner().invoke(cli, ["export", str(tiny_bundle_dir), "--out", str(tmp_path / "serving"), "--version", "1"])
    assert again.exit_code == 1 and "already exists" in again.output


def test_calibrate_writes_a_model_folder_chosen_on_validation(synthetic_monuseg, synthetic_tnbc, tmp_path):
    model = build_model("unet_plus", base_filters=4, depth=3)
    model.save(tmp_path / "best.keras")
    (tmp_path / "config.yaml").write_text("arch: unet_plus\npreprocess: {stain: none}\ndata: {tile: 32}\n")
    result = CliRunner().invoke(cli, ["calibrate", str(tmp_path / "best.keras"), "--protocol", "kasturi2022",
                                      "--monuseg", str(synthetic_monuseg), "--tnbc", str(synthetic_tnbc),
                                      "--out", str(tmp_path / "folder")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    bundle = load_bundle(tmp_path / "folder")
    calibration = bundle.info["calibration"]
    assert calibration["split"] == "val" and calibration["images"] == 1 and bundle.tile == 32
    assert len(calibration["table"]) == 26 and bundle.postprocess.split in ("none", "watershed")
    assert "watershed@0.5" in calibration["table"] and bundle.postprocess.min_size == 10
    for bad in ("ten", "10,-5", "", "nan"):
        refused = CliRunner().invoke(cli, ["calibrate", str(tmp_path / "best.keras"), "--min-area", bad, "--protocol", "kasturi2022",
                                           "--monuseg", str(synthetic_monuseg), "--out", str(tmp_path / "other")])
        assert refused.exit_code == 2 and "is not an area in um^2" in refused.output and not (tmp_path / "other").exists()
    refused = CliRunner().invoke(cli, ["calibrate", str(tmp_path / "best.keras"), "--min-marker-sizes", "10", "--protocol",
                                       "kasturi2022", "--monuseg", str(synthetic_monuseg), "--out", str(tmp_path / "other")])
    assert refused.exit_code == 2 and "no three-class or hv head" in refused.output and not (tmp_path / "other").exists()
    refused = CliRunner().invoke(cli, ["calibrate", str(tmp_path / "best.keras"), "--metric", "aji,accuracy", "--protocol",
                                       "kasturi2022", "--monuseg", str(synthetic_monuseg), "--out", str(tmp_path / "other")])
    assert refused.exit_code == 2 and "unknown metric 'accuracy'" in refused.output and not (tmp_path / "other").exists()
    evaluated = CliRunner().invoke(cli, ["evaluate", "--model", str(tmp_path / "folder"), "--protocol", "kasturi2022",
                                         "--monuseg", str(synthetic_monuseg), "--tnbc", str(synthetic_tnbc),
                                         "--out", str(tmp_path / "report")])
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads((tmp_path / "report" / "summary.json").read_text())["splits"]["tnbc-test"]["mean"]["n_images"] == 2


def test_calibrate_caps_macenko_gains_at_the_training_splits_largest(synthetic_monuseg, synthetic_tnbc, tmp_path):
    from nuclei_tf.data import split_protocol
    from nuclei_tf.inference.calibrate import stain_gain_limit
    from nuclei_tf.inference.predict import stain_function
    from nuclei_tf.inference.sources import ArraySource
    from nuclei_tf.preprocess.macenko import MacenkoNormalizer

    build_model("unet_plus", base_filters=4, depth=3).save(tmp_path / "best.keras")
    (tmp_path / "config.yaml").write_text("arch: unet_plus\npreprocess: {stain: macenko}\ndata: {tile: 32}\n")
    common = [str(tmp_path / "best.keras"), "--protocol", "kasturi2022", "--monuseg", str(synthetic_monuseg), "--tnbc", str(synthetic_tnbc)]
    result = CliRunner().invoke(cli, ["calibrate", *common, "--out", str(tmp_path / "capped")], catch_exceptions=False)
    assert result.exit_code == 0 and "Macenko gains capped at" in result.output, result.output
    bundle = load_bundle(tmp_path / "capped")
    train = split_protocol("kasturi2022", monuseg=synthetic_monuseg, tnbc=synthetic_tnbc, seed=0)["train"]
    free = MacenkoNormalizer()
    gains = [free.gain(free.source_statistics(r.load_image())[1]) for r in train]  # small images: the sample is the image
    expected = np.max(gains, axis=0)
    assert bundle.stain_max_gain == stain_gain_limit(bundle, train, progress=False)
    np.testing.assert_allclose(bundle.stain_max_gain, expected, atol=1e-4)
    assert np.all(np.array(bundle.stain_max_gain) >= expected), "rounded up: no training image is capped"
    assert bundle.info["calibration"]["stain_max_gain"] == {"split": "train", "images": len(train)}
    faint = (255 - (255 - train[0].load_image()) // 2).astype(np.uint8)  # half the stain: a larger gain
    limited = MacenkoNormalizer(max_gain=bundle.stain_max_gain)
    np.testing.assert_array_equal(stain_function(bundle, ArraySource(faint, 32))(faint),
                                  limited.apply(faint, limited.source_statistics(faint)))
    assert not np.array_equal(stain_function(bundle, ArraySource(faint, 32))(faint),
                              free.apply(faint, free.source_statistics(faint)))
    result = CliRunner().invoke(cli, ["calibrate", *common, "--no-stain-gain-limit", "--out", str(tmp_path / "free")], catch_exceptions=False)
    assert result.exit_code == 0 and load_bundle(tmp_path / "free").stain_max_gain is None, result.output
    class White:
        def load_image(self):
            return np.full((40, 40, 3), 250, np.uint8)

    with pytest.raises(ValueError, match="none of the 1 training images has tissue"):
        stain_gain_limit(bundle, [White()], progress=False)


def test_a_fresh_process_loads_a_model_folder_without_importing_the_models(tiny_bundle_dir):
    script = f"from nuclei_tf.inference import load_bundle; print(load_bundle(r'{tiny_bundle_dir}').model.count_params())"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0 and int(out.stdout.strip()) > 0, out.stderr[-2000:]


def test_demo_runs_the_shipped_model_on_the_shipped_sample(tmp_path):
    result = CliRunner().invoke(cli, ["demo", "--out", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    labels = tifffile.imread(tmp_path / "breast_sample.labels.tif")
    assert labels.shape == (512, 512) and labels.dtype == np.int32
    assert labels.max() > 50, "the shipped model finds the nuclei of the sample (~100 in this crop)"
    bundle = load_bundle()
    assert bundle.info["calibration"]["split"] == "val"
    assert (bundle.info["calibration"]["metric"], bundle.postprocess.split) == ("aji", "watershed")


def row_strips(instances, sizes):
    """A full instance map cut into consecutive row strips of the given heights (ids kept)."""
    top = 0
    for size in sizes:
        yield InstanceStrip(top, instances[top : top + size], first_id=1, final=min(top + size, len(instances)))
        top += size


def test_streamed_overlay_outlines_equal_skimage_inner_boundaries(tmp_path):
    from skimage.segmentation import find_boundaries

    rng = np.random.default_rng(3)
    instances = disk_instances((290, 70), list(zip(rng.integers(5, 285, 40), rng.integers(5, 65, 40))), 7)
    image = rng.integers(0, 256, (290, 70, 3), dtype=np.uint8)
    paths, _ = write_segmentation(image, row_strips(instances, [1, 30, 100, 2, 157]), tmp_path, "img")
    expected = image.copy()
    expected[find_boundaries(instances, mode="inner")] = (0, 255, 0)
    np.testing.assert_array_equal(np.asarray(Image.open(paths["overlay"])), expected)
    np.testing.assert_array_equal(tifffile.imread(paths["labels"]), instances)


def same_nuclei_files(a, b):
    """Two output sets describe the same nuclei (ids may differ): labels, table and polygons."""
    la, lb = tifffile.imread(a["labels"]), tifffile.imread(b["labels"])
    pairs = np.unique(np.stack([la[la > 0], lb[lb > 0]]), axis=1)
    assert np.array_equal(la > 0, lb > 0) and pairs.shape[1] == la.max() == lb.max()
    rows = [sorted((r["area_px"], r["centroid_x"], r["centroid_y"]) for r in csv.DictReader(open(p["csv"]))) for p in (a, b)]
    assert rows[0] == rows[1] and len(rows[0]) == la.max()
    rings = [sorted(json.dumps(f["geometry"]) for f in json.loads(p["geojson"].read_text())["features"]) for p in (a, b)]
    assert rings[0] == rings[1]
    assert np.array_equal(np.asarray(Image.open(a["overlay"])), np.asarray(Image.open(b["overlay"])))


def test_streamed_segmentation_writes_what_the_whole_image_path_writes(tmp_path):
    bundle = ModelBundle(red_channel_model(), tile=64, overlap=0.5, postprocess=PostProcess(threshold=0.5, split="watershed"))
    rng = np.random.default_rng(5)
    image = rng.integers(0, 90, (301, 190, 3), dtype=np.uint8)
    image[..., 0] = np.clip(disk_instances((301, 190), list(zip(rng.integers(0, 301, 60), rng.integers(0, 190, 60))), 9) * 255, 0, 255)
    whole = write_outputs(image, segment(bundle, image)[1], tmp_path / "whole", "img")
    streamed, count = write_segmentation(image, segment_strips(bundle, image, strip_rows=40), tmp_path / "streamed", "img")
    assert count > 30
    same_nuclei_files(whole, streamed)


def test_an_error_mid_slide_leaves_no_partial_files(tmp_path):
    bundle = ModelBundle(red_channel_model(), tile=64, overlap=0.5)

    def failing():
        yield from segment_strips(bundle, np.zeros((200, 100, 3), np.uint8), strip_rows=30)
        raise ValueError("probability map holds NaN or Inf")

    with pytest.raises(ValueError, match="NaN"):
        write_segmentation(np.zeros((300, 100, 3), np.uint8), failing(), tmp_path, "img")
    assert list(tmp_path.iterdir()) == []


def test_long2020_inference_clahe_tv_grid_recrops_and_max_merging(tmp_path):
    """Long 2020's inference: the whole image through CLAHE + TV, 64 px grid re-cropped at the
    edges (overlap 0), overlapping predictions merged by their maximum; the setting round-trips."""
    from nuclei_tf.preprocess.clahe_tv import clahe_tv

    image = np.random.default_rng(3).integers(0, 256, (100, 90, 3), dtype=np.uint8)
    bundle = ModelBundle(red_channel_model(), clahe_tv=True, tile=64, overlap=0.0, blend="max")
    probability = predict_probability(bundle, image)
    np.testing.assert_allclose(probability.astype(np.float32), clahe_tv(image)[..., 0], atol=1e-3)
    reloaded = load_bundle(save_bundle(bundle, tmp_path / "model"))
    assert reloaded.clahe_tv and reloaded.blend == "max" and reloaded.overlap == 0.0
    model = build_model("unet_plus", base_filters=4, depth=3)
    tiles, starts = extract_tiles(clahe_tv(image), 64, 0.0)
    expected = stitch(np.asarray(model(tiles))[..., 0], starts, image.shape[:2], "max")
    merged = predict_probability(ModelBundle(model, clahe_tv=True, tile=64, overlap=0.0, blend="max"), image)
    np.testing.assert_allclose(merged.astype(np.float32), expected, atol=1e-3)


@pytest.mark.parametrize("key, value, allowed", [
    ("stain", "vahadane", "one of none, macenko"),
    ("tile", "256", "an integer >= 16"),
    ("tile", 8, "an integer >= 16"),
    ("overlap", 1.5, "[0, 1)"),
    ("blend", "gaussian", "one of mean, max, smooth"),
    ("mpp", 352.8, "0.05-20"),
    ("stain_max_gain", [1.5], "null or two numbers > 0"),
    ("stain_max_gain", [1.5, 0], "null or two numbers > 0"),
    ("stain_max_gain", "2", "null or two numbers > 0"),
    ("postprocess", {"threshold": 2}, "'postprocess.threshold' = 2"),
    ("postprocess", {"split": "voronoi"}, "one of none, watershed"),
    ("postprocess", {"min_size": -1}, "an integer >= 0"),
    ("postprocess", {"thresold": 0.5}, "unknown key(s) 'postprocess.thresold' (did you mean 'threshold'?)"),
    ("postprocess", {"marker_threshold": 1.5}, "'postprocess.marker_threshold' = 1.5"),
    ("postprocess", {"require_marker": "yes"}, "'postprocess.require_marker' = \"yes\" is not valid; expected true or false"),
    ("postprocess", {"min_marker_size": 2.5}, "'postprocess.min_marker_size' = 2.5 is not valid; expected an integer >= 0"),
    ("postprocess", {"split": "markers"}, "needs a three-class or hv model"),
    ("stian", "macenko", "unknown key(s) 'stian' (did you mean 'stain'?)"),
    ("format", 6, "'format' = 6 is not valid; this nuclei-tf reads formats 1-5; the folder was written by a newer"),
    ("postprocess", {"min_area_um2": 3.0}, "'postprocess.min_area_um2' needs the model's resolution ('mpp')"),
])
def test_a_bad_model_folder_config_is_refused_naming_the_key(tiny_bundle_dir, tmp_path, key, value, allowed):
    config = json.loads((tiny_bundle_dir / "config.json").read_text())
    config[key] = {**config[key], **value} if key == "postprocess" else value
    (tiny_bundle_dir / "config.json").write_text(json.dumps(config))
    Image.fromarray(np.full((40, 40, 3), 100, np.uint8)).save(tmp_path / "a.png")
    for command in (["predict", str(tmp_path / "a.png"), "--model", str(tiny_bundle_dir), "--out", str(tmp_path / "out")],
                    ["export", str(tiny_bundle_dir), "--out", str(tmp_path / "serving")]):
        result = CliRunner().invoke(cli, command)
        assert result.exit_code == 1 and "config.json: " in result.output and allowed in result.output, result.output
        assert "Traceback" not in result.output


@pytest.mark.parametrize("missing", ["postprocess", "postprocess.threshold", "margin", "tta", "stain"])
@pytest.mark.parametrize("version", [1, 2, 3, 4, 5])
def test_a_model_folder_config_missing_a_setting_is_refused_naming_it(tiny_bundle_dir, tmp_path, missing, version):
    config = json.loads((tiny_bundle_dir / "config.json").read_text())
    config["format"] = version
    if version < 4:
        config.get("postprocess", {}).pop("marker_opening")  # format 4's
    if version < 5:
        config.get("postprocess", {}).pop("nms_threshold")  # format 5's
    if version == 1:
        del config["format"]
    section, _, key = missing.rpartition(".")
    del (config[section] if section else config)[key]
    (tiny_bundle_dir / "config.json").write_text(json.dumps(config))
    Image.fromarray(np.full((40, 40, 3), 100, np.uint8)).save(tmp_path / "a.png")
    result = CliRunner().invoke(cli, ["predict", str(tmp_path / "a.png"), "--model", str(tiny_bundle_dir), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and f"config.json: missing key(s) {missing}: every setting must be stated" in result.output
    assert ("nuclei-tf upgrade-model" in result.output) == (version == 1), result.output
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_model_folder_without_config_json_is_refused(tiny_bundle_dir, tmp_path):
    (tiny_bundle_dir / "config.json").unlink()
    with pytest.raises(DataError, match="config.json: not found: a model folder states its settings there"):
        load_bundle(tiny_bundle_dir)
    assert load_bundle(tiny_bundle_dir / "model.keras").tile == 256  # a bare .keras file: the documented defaults


def test_upgrade_model_writes_out_what_format_1_readers_used(tiny_bundle_dir):
    from nuclei_tf.inference.folder_config import FORMAT1_DEFAULTS, FORMAT1_POSTPROCESS

    path = tiny_bundle_dir / "config.json"
    written = json.loads(path.read_text())
    old = {"stain": "none", "tile": 32, "overlap": 0.25, "blend": "smooth", "arch": "unet_plus",
           "postprocess": {"threshold": 0.4, "min_size": 10, "fill": True, "split": "watershed", "h": 1.0}}
    path.write_text(json.dumps(old))  # a format-1 file as the first releases wrote it
    result = CliRunner().invoke(cli, ["upgrade-model", str(tiny_bundle_dir)])
    assert result.exit_code == 0, result.output
    assert "format 1 -> 5; written out: stain_max_gain = null; clahe_tv = false; mpp = null; margin = 0; tta = false; " \
           'precision = "auto"; postprocess.marker_threshold = 0.5; postprocess.require_marker = false; ' \
           "postprocess.min_marker_size = 1; postprocess.marker_opening = 0; postprocess.nms_threshold = 0.4" in result.output
    upgraded = json.loads(path.read_text())
    assert upgraded == {**{k: v for k, v in written.items() if k != "description"}, "arch": "unet_plus"}
    assert {k: upgraded[k] for k in FORMAT1_DEFAULTS if k not in old} == {k: FORMAT1_DEFAULTS[k] for k in FORMAT1_DEFAULTS if k not in old}
    assert upgraded["postprocess"]["min_marker_size"] == FORMAT1_POSTPROCESS["min_marker_size"]
    assert load_bundle(tiny_bundle_dir).margin == 0
    again = CliRunner().invoke(cli, ["upgrade-model", str(tiny_bundle_dir)])
    assert again.exit_code == 0 and "already format 5" in again.output and json.loads(path.read_text()) == upgraded
    path.write_text(json.dumps({**old, "stian": "macenko"}))  # a misspelt key is not upgraded away
    refused = CliRunner().invoke(cli, ["upgrade-model", str(tiny_bundle_dir)])
    assert refused.exit_code == 1 and "unknown key(s) 'stian'" in refused.output and "format" not in json.loads(path.read_text())


def test_the_smallest_nucleus_is_stated_in_square_microns_and_older_pixel_folders_read_as_the_same_area(tiny_bundle_dir, tmp_path):
    path = tiny_bundle_dir / "config.json"
    config = json.loads(path.read_text())
    post = {k: v for k, v in config["postprocess"].items() if k not in ("marker_opening", "nms_threshold")}  # formats 4, 5
    path.write_text(json.dumps({**config, "format": 2, "mpp": 0.2462, "postprocess": {**post, "min_size": 37}}))
    old = load_bundle(tiny_bundle_dir)  # a format-2 folder: pixels at the model's resolution, shown in um^2
    assert old.postprocess.min_size == 37 and old.min_area_um2 == round(37 * 0.2462**2, 6)
    assert "smallest nucleus 2.24273 um^2 (37 px)" in old.postprocess_summary()
    result = CliRunner().invoke(cli, ["upgrade-model", str(tiny_bundle_dir)])
    assert result.exit_code == 0 and ("format 2 -> 5; written out: postprocess.marker_opening = 0; "
                                      "postprocess.nms_threshold = 0.4; postprocess.min_area_um2 = 2.242734") in result.output, result.output
    upgraded = json.loads(path.read_text())
    assert upgraded["format"] == 5 and "min_size" not in upgraded["postprocess"]
    assert load_bundle(tiny_bundle_dir).postprocess.min_size == 37  # the same nuclei as before the upgrade
    folder = save_bundle(old, tmp_path / "again")
    for mpp in (0.05, 0.2462, 0.25, 0.5, 1.37):  # a saved config.json turns its um^2 back into exactly its pixels
        for pixels in (0, 1, 10, 37, 48, 1000):
            bundle = replace(old, mpp=mpp, postprocess=replace(old.postprocess, min_size=pixels))
            (folder / "config.json").write_text(json.dumps(bundle.settings(), indent=2))
            config = read_folder_config(folder / "config.json")
            assert pixel_postprocess(config["postprocess"], config["mpp"])["min_size"] == pixels, (mpp, pixels)
    assert load_bundle(folder).postprocess.min_size == 1000  # the last one, through the whole folder
    old.mpp = 0.25
    old.keep_nuclei_from(3)  # --min-area 3: the fewest whole pixels of at least 3 um^2
    assert old.postprocess.min_size == 48
    old.keep_nuclei_from(3.01)
    assert old.postprocess.min_size == 49
    path.write_text(json.dumps({**upgraded, "postprocess": {**upgraded["postprocess"], "min_size": 10}}))
    with pytest.raises(DataError, match=r"unknown key\(s\) 'postprocess.min_size'"):
        load_bundle(tiny_bundle_dir)  # format 3 with a resolution states um^2, never both


def test_format_5_states_the_polygon_suppression_and_split_polygons_is_for_rays_models_only(tiny_bundle_dir, tmp_path):
    path = tiny_bundle_dir / "config.json"
    config = json.loads(path.read_text())
    assert config["format"] == 5 and config["postprocess"]["nms_threshold"] == 0.4
    post = {k: v for k, v in config["postprocess"].items() if k != "nms_threshold"}
    path.write_text(json.dumps({**config, "format": 4, "postprocess": post}))
    assert load_bundle(tiny_bundle_dir).postprocess.nms_threshold == 0.4  # a format-4 folder holds no rays model
    for bad in (1.5, -0.1, "0.4", None):
        path.write_text(json.dumps({**config, "postprocess": {**config["postprocess"], "nms_threshold": bad}}))
        with pytest.raises(DataError, match=r"'postprocess.nms_threshold' = .* is not valid; expected a number in \[0, 1\]"):
            load_bundle(tiny_bundle_dir)
    path.write_text(json.dumps({**config, "postprocess": {**config["postprocess"], "split": "polygons"}}))
    with pytest.raises(DataError, match='split\' = "polygons" does not fit a foreground model'):
        load_bundle(tiny_bundle_dir)
    rays = save_bundle(ModelBundle(build_model("unet_plus", base_filters=4, depth=3, head="rays"), tile=32,
                                   postprocess=PostProcess(split="watershed")), tmp_path / "rays")
    with pytest.raises(DataError, match='split\' = "watershed" does not fit a rays model'):
        load_bundle(rays)


def test_format_4_states_the_marker_opening_and_format_3_folders_mean_none(tiny_bundle_dir):
    path = tiny_bundle_dir / "config.json"
    config = json.loads(path.read_text())
    assert config["format"] == 5 and config["postprocess"]["marker_opening"] == 0
    config = {**config, "format": 4, "postprocess": {k: v for k, v in config["postprocess"].items() if k != "nms_threshold"}}
    post = {k: v for k, v in config["postprocess"].items() if k != "marker_opening"}
    path.write_text(json.dumps({**config, "format": 3, "postprocess": post}))
    assert load_bundle(tiny_bundle_dir).postprocess.marker_opening == 0  # what format-3 readers did: no opening
    path.write_text(json.dumps({**config, "format": 3}))
    with pytest.raises(DataError, match=r"unknown key\(s\) 'postprocess.marker_opening'"):
        load_bundle(tiny_bundle_dir)
    path.write_text(json.dumps({**config, "postprocess": post}))
    with pytest.raises(DataError, match="missing key\\(s\\) postprocess.marker_opening"):
        load_bundle(tiny_bundle_dir)
    area = {k: v for k, v in post.items() if k != "min_size"}
    path.write_text(json.dumps({**config, "format": 3, "mpp": 0.25, "postprocess": {**area, "min_area_um2": 3.0}}))
    result = CliRunner().invoke(cli, ["upgrade-model", str(tiny_bundle_dir)])
    assert result.exit_code == 0 and result.output.strip().endswith(
        "format 3 -> 5; written out: postprocess.marker_opening = 0; postprocess.nms_threshold = 0.4")
    assert json.loads(path.read_text())["postprocess"]["min_area_um2"] == 3.0, "the upgrade keeps the stated area"
    assert load_bundle(tiny_bundle_dir).postprocess.min_size == 48
    for bad in (5, -1, 1.5, True):
        path.write_text(json.dumps({**config, "postprocess": {**post, "marker_opening": bad}}))
        with pytest.raises(DataError, match=r"'postprocess.marker_opening' = .* is not valid; expected an integer in 0..4"):
            load_bundle(tiny_bundle_dir)


def test_predict_min_area_drops_the_smaller_nuclei_and_needs_a_resolution(tmp_path):
    model = darkness_model()
    image = np.full((64, 64, 3), 255, np.uint8)
    image[4:8, 4:8] = 0  # 16 px = 1 um^2 at 0.25 um/px
    image[20:30, 20:30] = 0  # 100 px = 6.25 um^2
    Image.fromarray(image).save(tmp_path / "a.png")
    folder = save_bundle(ModelBundle(model, tile=64, mpp=0.25, postprocess=PostProcess(threshold=0.5, min_size=10)), tmp_path / "m")
    for area, expected in ((None, 2), ("1", 2), ("1.01", 1), ("6.25", 1), ("6.3", 0)):
        out = tmp_path / f"out{area}"
        result = CliRunner().invoke(cli, ["predict", str(tmp_path / "a.png"), "--model", str(folder), "--out", str(out),
                                          *(["--min-area", area] if area else [])], catch_exceptions=False)
        assert result.exit_code == 0 and f"{expected} nuclei" in result.output, result.output
    assert "smallest nucleus 0.625 um^2 (10 px)" in CliRunner().invoke(
        cli, ["predict", str(tmp_path / "a.png"), "--model", str(folder), "--out", str(tmp_path / "again")]).output
    refused = CliRunner().invoke(cli, ["predict", str(tmp_path / "a.png"), "--min-area", "-1", "--out", str(tmp_path / "x")])
    assert refused.exit_code == 2 and "-1.0 is not an area >= 0 um^2" in refused.output
    unknown = save_bundle(ModelBundle(model, tile=64, postprocess=PostProcess(threshold=0.5)), tmp_path / "unknown")
    refused = CliRunner().invoke(cli, ["predict", str(tmp_path / "a.png"), "--model", str(unknown), "--min-area", "3",
                                       "--out", str(tmp_path / "x")])
    assert refused.exit_code == 2 and "records no training resolution" in refused.output and not any((tmp_path / "x").iterdir())


def test_the_settings_checked_are_the_settings_a_bundle_has():
    from dataclasses import fields

    from nuclei_tf.inference.folder_config import (CHECKS, FORMAT1_DEFAULTS, FORMAT1_POSTPROCESS, MIN_AREA, POSTPROCESS_CHECKS,
                                                    POSTPROCESS_SETTINGS, SETTINGS)

    bundle_fields = [f.name for f in fields(ModelBundle) if f.name not in ("model", "postprocess", "info", "_compiled", "traces")]
    assert list(SETTINGS) == bundle_fields and set(CHECKS) == set(SETTINGS) == set(FORMAT1_DEFAULTS)
    assert set(POSTPROCESS_CHECKS) == {*POSTPROCESS_SETTINGS, MIN_AREA} and set(POSTPROCESS_SETTINGS) == set(FORMAT1_POSTPROCESS)


def test_a_corrupt_model_file_is_named_as_corrupt(tiny_bundle_dir, tmp_path):
    (tiny_bundle_dir / "model.keras").write_bytes(b"PK\x03\x04 not really a zip")
    Image.fromarray(np.full((40, 40, 3), 100, np.uint8)).save(tmp_path / "a.png")
    result = CliRunner().invoke(cli, ["predict", str(tmp_path / "a.png"), "--model", str(tiny_bundle_dir), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "model.keras: cannot be loaded as a nuclei-tf Keras model: corrupt" in result.output


def test_two_inputs_with_one_stem_are_refused_before_any_work(tmp_path):
    for name in ("a.png", "a.jpg", "x/b.png", "y/b.png"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        Image.fromarray(np.full((8, 8, 3), 100, np.uint8)).save(tmp_path / name)
    for pair in (("a.png", "a.jpg"), ("x/b.png", "y/b.png")):
        result = CliRunner().invoke(cli, ["predict", *(str(tmp_path / p) for p in pair), "--out", str(tmp_path / "out")])
        assert result.exit_code == 2 and "would both write" in result.output and pair[1] in result.output
    assert not (tmp_path / "out").exists()


def test_an_interrupted_export_leaves_no_version_folder(tiny_bundle_dir, tmp_path, monkeypatch):

    def interrupted(self, path, *args, **kwargs):
        (Path(path) / "variables").mkdir(parents=True)
        raise KeyboardInterrupt

    monkeypatch.setattr(type(keras.export.ExportArchive()), "write_out", interrupted)  # the backend's archive class
    stopped = CliRunner().invoke(cli, ["export", str(tiny_bundle_dir), "--out", str(tmp_path / "serving")])
    assert stopped.exit_code != 0 and list((tmp_path / "serving").iterdir()) == [], (stopped.output, stopped.exception)
    zero = CliRunner().invoke(cli, ["export", str(tiny_bundle_dir), "--out", str(tmp_path / "serving"), "--version", "0"])
    assert zero.exit_code == 2 and "--version" in zero.output


def test_sigterm_stops_predict_without_partial_files(tmp_path):
    import signal
    import time

    big = np.tile(np.asarray(Image.open("nuclei_tf/data/sample/breast_sample.png").convert("RGB")), (8, 8, 1))
    Image.fromarray(big).save(tmp_path / "big.png")
    command = [sys.executable, "-m", "nuclei_tf", "predict", str(tmp_path / "big.png"), "--out", str(tmp_path / "out")]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while not list((tmp_path / "out").glob("*.partial")) and time.time() < deadline and child.poll() is None:
        time.sleep(0.2)
    child.send_signal(signal.SIGTERM)
    output, _ = child.communicate(timeout=60)
    assert child.returncode == 130 and "interrupted while predicting" in output, output[-2000:]
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize("head", ["foreground", "three_class"])
def test_tta_is_the_mean_over_the_eight_flips_and_rotations(tmp_path, head):
    model = build_model("unet_plus", base_filters=4, depth=3, head=head)
    tiles = np.random.default_rng(3).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    plain = ModelBundle(model, tile=32)
    expected = 0.0
    for turns in range(4):
        for flip in (False, True):
            view = np.rot90(tiles, turns, axes=(1, 2))
            view = view[:, :, ::-1] if flip else view
            p = plain.probabilities(np.ascontiguousarray(view))
            expected += np.rot90(p[:, :, ::-1] if flip else p, -turns, axes=(1, 2))
    np.testing.assert_allclose(ModelBundle(model, tile=32, tta=True).probabilities(tiles), expected / 8, atol=1e-6)
    folder = save_bundle(ModelBundle(model, tile=32, tta=True), tmp_path / "tta")
    assert load_bundle(folder).tta is True


@pytest.mark.parametrize("arch", ["unet", "unet_plus", "unetpp"])
def test_margin_tiling_equals_one_whole_image_model_call(arch):
    from dataclasses import replace

    from nuclei_tf.inference.predict import probability_rows
    from nuclei_tf.models.receptive_field import inference_margin, receptive_field_radius

    keras.utils.set_random_seed(1)  # an unseeded 4-filter net can be dead (all ReLUs off): no receptive field
    model = build_model(arch, base_filters=4)
    margin = inference_margin(model)
    assert margin >= receptive_field_radius(model) and margin % 16 == 0
    image = np.random.default_rng(5).integers(0, 256, (1024, 1024 - 37, 3), dtype=np.uint8)  # >= 4 x 4 tiles
    padded = np.pad(image / 255.0, ((0, 0), (0, (-987) % 16), (0, 0)), mode="reflect")  # to the model's multiple
    whole = np.asarray(model(padded[None].astype(np.float32)))[0, :, :987, -1]
    bundle = ModelBundle(model, tile=4 * margin, margin=margin)
    tiled = predict_probability(bundle, image).astype(np.float32)
    half_ulp = np.abs(whole - whole.astype(np.float16).astype(np.float32))
    assert np.all(np.abs(tiled - whole) <= half_ulp + 1e-5), "the margin scheme reproduces the untiled model"
    blended = predict_probability(replace(bundle, margin=0, tile=256, overlap=0.5), image).astype(np.float32)
    assert np.abs(blended - whole).max() > np.abs(tiled - whole).max()  # blending 256 px tiles does not
    resumed = list(probability_rows(bundle, image, start_row=500))
    assert resumed[0][0] == 500 and np.array_equal(np.vstack([rows for _, rows in resumed]), tiled[500:].astype(np.float16))


def test_a_three_class_model_is_reduced_to_two_channels_as_early_as_the_tiles():
    from nuclei_tf.models.receptive_field import inference_margin

    keras.utils.set_random_seed(1)  # seeded: the receptive field is measured on live (not all-dead) weights
    model = build_model("unet_plus", base_filters=4, depth=3, head="three_class")
    tiles = np.random.default_rng(4).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    np.testing.assert_allclose(ModelBundle(model, tile=32).probabilities(tiles), reduce_three_class(model(tiles / 255.0)), atol=1e-6)
    margin = inference_margin(model)
    image = np.random.default_rng(5).integers(0, 256, (3 * margin + 20, 5 * margin + 8, 3), dtype=np.uint8)  # multiples of 4
    whole = reduce_three_class(np.asarray(model((image / 255.0)[None].astype(np.float32)))[0])
    tiled = predict_probability(ModelBundle(model, tile=4 * margin, margin=margin), image).astype(np.float32)
    assert tiled.shape == image.shape[:2] + (2,)
    half_ulp = np.abs(whole - whole.astype(np.float16).astype(np.float32))
    assert np.all(np.abs(tiled - whole) <= half_ulp + 1e-5), "the margin scheme carries both channels exactly"


def test_a_three_class_model_folder_segments_with_markers(tmp_path):
    model = three_class_darkness_model()
    model.save(tmp_path / "bare.keras")
    bare = load_bundle(tmp_path / "bare.keras")
    assert bare.postprocess == PostProcess(split="markers"), "a three-class model splits with markers by default"
    image = np.asarray(Image.open("nuclei_tf/data/sample/breast_sample.png").convert("RGB"))[:200, :160]
    bare.tile = 64
    probability, instances = segment(bare, image)
    assert probability.shape == (200, 160, 2) and probability.dtype == np.float16 and instances.dtype == np.int32
    whole = probability_to_instances(probability, bare.postprocess)
    np.testing.assert_array_equal(instances > 0, whole > 0)
    assert instances.max() == whole.max() > probability_to_instances(probability, PostProcess()).max() > 5
    settings = PostProcess(threshold=0.4, split="markers", marker_threshold=0.6)
    folder = save_bundle(ModelBundle(model, tile=64, postprocess=settings), tmp_path / "folder")
    assert load_bundle(folder).postprocess == settings
    Image.fromarray(image).save(tmp_path / "a.png")
    result = CliRunner().invoke(cli, ["predict", str(tmp_path / "a.png"), "--model", str(folder), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    labels = tifffile.imread(tmp_path / "out" / "a.labels.tif")
    assert labels.dtype == np.int32 and labels.max() > 5


def test_the_shipped_model_discards_at_least_its_measured_receptive_field(synthetic_monuseg, synthetic_tnbc, tmp_path):
    from nuclei_tf.models.receptive_field import inference_margin

    shipped = load_bundle()
    assert shipped.margin >= inference_margin(shipped.model) and shipped.tile >= 4 * shipped.margin
    keras.utils.set_random_seed(1)  # seeded: the receptive field is measured on live (not all-dead) weights
    model = build_model("unet_plus", base_filters=4, depth=3)
    model.save(tmp_path / "best.keras")
    result = CliRunner().invoke(cli, ["calibrate", str(tmp_path / "best.keras"), "--protocol", "kasturi2022", "--tiling", "margin",
                                      "--monuseg", str(synthetic_monuseg), "--tnbc", str(synthetic_tnbc), "--out", str(tmp_path / "f")])
    assert result.exit_code == 0, result.output
    calibrated = load_bundle(tmp_path / "f")
    measured = calibrated.info["calibration"]["tile"]
    assert measured["memory_mib"] == 320 and measured["precision"] == "float32" and 10 < measured["bytes_per_pixel"] < 1000
    assert calibrated.margin == inference_margin(model)
    assert calibrated.tile == margin_tile(measured["bytes_per_pixel"], calibrated.margin, 4, 320) > 512
    assert f"margin tiles of {calibrated.tile} px" in result.output


def test_the_margin_tile_is_the_largest_that_fits_the_memory_budget():
    assert margin_tile(346, 64, 32, 512) == 1216  # sqrt(512 MiB / 346 B) = 1245.6 px, down to a multiple of 32
    assert margin_tile(570, 64, 32, 512) == 960  # 970.5
    assert margin_tile(346, 64, 32, 2048) == 2464  # 2491.2
    with pytest.raises(ValueError, match="a 16 MiB budget allows 192 px tiles at 346 B/px, not more than twice the 128 px"):
        margin_tile(346, 128, 32, 16)


def test_activation_memory_is_measured_in_a_child_process(tmp_path):
    model = build_model("unet_plus", base_filters=4, depth=3)
    model.save(tmp_path / "m.keras")
    small = activation_bytes_per_pixel(tmp_path / "m.keras", "float32", probe=256)
    build_model("unet_plus", base_filters=16, depth=3).save(tmp_path / "wide.keras")
    assert 0 < small < activation_bytes_per_pixel(tmp_path / "wide.keras", "float32", probe=256)  # 4x the filters, more memory
    (tmp_path / "bad.keras").write_bytes(b"not a model")
    with pytest.raises(RuntimeError, match="bad.keras: measuring the model's activation memory failed"):
        activation_bytes_per_pixel(tmp_path / "bad.keras", "float32")


def test_nucleus_polygons_are_valid_even_through_a_one_pixel_neck():
    from shapely.geometry import Polygon

    from nuclei_tf.inference.outputs import polygons

    labels = np.zeros((12, 12), np.int32)
    labels[1:5, 1:5] = 1
    labels[5, 5] = 1  # two squares joined at a corner pixel
    labels[6:10, 6:10] = 1
    ring = polygons(labels)[1]
    assert Polygon(ring).is_valid and ring[0] == ring[-1]


def test_shipped_model_folders_are_current_format_and_complete():
    from nuclei_tf.inference.shipped import shipped_models
    from nuclei_tf.inference.folder_config import FORMAT, read_folder_config
    from nuclei_tf.inference.shipped import resolve_model

    for name in shipped_models():
        assert read_folder_config(resolve_model(name) / "config.json")["format"] == FORMAT, name


def test_images_of_five_sizes_in_one_predict_trace_the_model_once(tmp_path, monkeypatch):
    import nuclei_tf.inference as inference
    from nuclei_tf.cli.predict import run_prediction

    folder = save_bundle(ModelBundle(build_model("unet_plus", base_filters=4, depth=3), tile=64, margin=16,
                                     postprocess=PostProcess(split="watershed")), tmp_path / "model")
    loaded, shapes = [], set()

    def load(*args, **kwargs):
        bundle = load_bundle(*args, **kwargs)
        probabilities = bundle.probabilities
        bundle.probabilities = lambda tiles: shapes.add(tiles.shape) or probabilities(tiles)
        loaded.append(bundle)
        return bundle

    monkeypatch.setattr(inference, "load_bundle", load)
    images = []
    for i, shape in enumerate([(40, 40), (100, 300), (211, 90), (64, 64), (150, 129)]):
        images.append(tmp_path / f"im{i}.png")
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (*shape, 3), dtype=np.uint8)).save(images[-1])
    written = run_prediction(images, tmp_path / "out", folder)
    assert len(written) == 5 and len({shape[1:3] for shape in shapes}) >= 5 and len({s[0] for s in shapes}) >= 2
    assert loaded[0].traces == 1, f"{len(shapes)} batch shapes, {loaded[0].traces} traces"
