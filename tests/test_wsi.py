"""Whole slides through `nuclei-tf predict`: the model's resolution, level-0 outputs, tissue only,
ROI, resume after a stop, QuPath GeoJSON (issue 13)."""
import csv
import json
import re

import keras
import numpy as np
import pytest
import tifffile
from click.testing import CliRunner
from PIL import Image

from conftest import SHARED_DATA, three_class_darkness_model
from nuclei_tf.cli.main import cli
from nuclei_tf.inference import ModelBundle, save_bundle
from nuclei_tf.inference.outputs import CSV_COLUMNS, MEASUREMENTS
from nuclei_tf.postprocess import PostProcess

WSI = SHARED_DATA / "WSI"
SAMPLE = "nuclei_tf/data/sample/breast_sample.png"


def real_slide(name):
    path = WSI / name
    if not path.is_file():
        pytest.skip(f"real slide not found at {path}")
    return path


@pytest.fixture
def darkness_model(tmp_path):
    """A model folder (0.25 um/px) whose probability is high on dark (haematoxylin) pixels:
    a fixed 1x1 convolution + sigmoid, fast and deterministic."""
    inputs = keras.Input((None, None, 3))
    conv = keras.layers.Conv2D(1, 1, activation="sigmoid", name="probabilities")
    model = keras.Model(inputs, conv(inputs))
    conv.set_weights([np.full((1, 1, 3, 1), -20.0 / 3), np.array([9.0])])  # p > 0.5 where mean RGB < 0.45
    bundle = ModelBundle(model, tile=64, overlap=0.25, mpp=0.25, postprocess=PostProcess(threshold=0.5, split="none", min_size=8))
    return save_bundle(bundle, tmp_path / "darkness")


@pytest.fixture
def pyramid_slide(tmp_path):
    """A generic tiled pyramidal TIFF at 0.25 um/px: the real H&E sample on a white slide
    (most of it background), with 2 sub-resolutions."""
    sample = np.asarray(Image.open(SAMPLE).convert("RGB"))
    level0 = np.full((1024, 1536, 3), 255, np.uint8)
    level0[100 : 100 + sample.shape[0], 200 : 200 + sample.shape[1]] = sample
    path = tmp_path / "synthetic.tif"
    with tifffile.TiffWriter(path) as tif:
        for k in range(3):
            tif.write(level0[:: 2**k, :: 2**k], tile=(128, 128), compression="zlib", photometric="rgb",
                      resolution=(4e4 / 2**k, 4e4 / 2**k), resolutionunit="CENTIMETER",
                      subfiletype=1 if k else 0)
    return path


def predict(*args):
    return CliRunner().invoke(cli, ["predict", *map(str, args)])


def test_a_20x_region_is_predicted_at_the_model_resolution_in_level0_coordinates(tmp_path):
    from shapely.geometry import shape

    slide = real_slide("cmu-1-small-region.svs")
    roi = (700, 1200, 300, 200)
    result = predict(slide, "--roi", ",".join(map(str, roi)), "--out", tmp_path)
    assert result.exit_code == 0, result.output
    assert "0.4990 um/px" in result.output and "to the model's 0.25 um/px" in result.output
    labels = tifffile.imread(tmp_path / "cmu-1-small-region.labels.tif")
    assert labels.shape == (roi[3], roi[2]) and labels.max() > 5
    collection = json.loads((tmp_path / "cmu-1-small-region.geojson").read_text())
    assert collection["type"] == "FeatureCollection" and len(collection["features"]) == labels.max()
    rows = list(csv.DictReader(open(tmp_path / "cmu-1-small-region.csv")))
    assert len(rows) == len(collection["features"]) and tuple(rows[0]) == CSV_COLUMNS
    import openslide

    region = np.asarray(openslide.OpenSlide(str(slide)).read_region(roi[:2], 0, roi[2:]).convert("L"), float)
    for feature in collection["features"]:
        polygon = shape(feature["geometry"])
        assert polygon.is_valid and polygon.area > 0
        properties = feature["properties"]
        assert properties["objectType"] == "detection" and properties["classification"]["name"] == "Nucleus"
        assert set(properties["measurements"]) == set(MEASUREMENTS)  # the names of the CSV columns, as for an image
        x0, y0, x1, y1 = polygon.bounds
        assert roi[0] - 1 <= x0 and x1 <= roi[0] + roi[2] + 1 and roi[1] - 1 <= y0 and y1 <= roi[1] + roi[3] + 1
    big = max(rows, key=lambda r: float(r["area_um2"]))
    x, y = float(big["centroid_x"]) - roi[0], float(big["centroid_y"]) - roi[1]
    assert region[int(y), int(x)] < np.median(region), "the largest nucleus' centroid lies on a dark slide pixel"
    assert 10 < float(big["area_um2"]) < 400  # a nucleus, in um^2 at 0.499 um/px
    assert (tmp_path / "cmu-1-small-region.tissue.png").is_file() and (tmp_path / "cmu-1-small-region.overlay.png").is_file()
    assert not (tmp_path / "cmu-1-small-region.parts").exists()


def test_a_slide_without_resolution_or_with_a_bad_one_stops_naming_it(tmp_path, darkness_model):
    slide = real_slide("tcga-cr-7395-01a-01-ts1.svs")
    result = predict(slide, "--model", darkness_model, "--out", tmp_path)
    assert result.exit_code == 1 and "no microns-per-pixel" in result.output and "--mpp" in result.output
    for bad in ("0", "-1", "352.8"):
        result = predict(slide, "--model", darkness_model, "--mpp", bad, "--out", tmp_path)
        assert result.exit_code == 2 and "--mpp" in result.output
    result = predict(slide, "--model", darkness_model, "--mpp", "0.25", "--roi", "4000,3000,1000,1000", "--out", tmp_path)
    assert result.exit_code == 1 and "not inside" in result.output
    assert not any(tmp_path.glob("*.geojson"))


def read_outputs(folder, stem):
    return (tifffile.imread(folder / f"{stem}.labels.tif"), (folder / f"{stem}.csv").read_text(),
            (folder / f"{stem}.geojson").read_text())


def test_tissue_is_skipped_and_a_stopped_run_resumes_to_the_same_outputs(tmp_path, darkness_model, pyramid_slide, monkeypatch):
    from nuclei_tf.inference import resume, wsi

    monkeypatch.setattr(wsi, "strip_rows_for", lambda width: 64)  # many strips on a small slide
    whole = predict(pyramid_slide, "--model", darkness_model, "--out", tmp_path / "whole")
    assert whole.exit_code == 0, whole.output
    kept, total = map(int, re.search(r"(\d+) of (\d+) tiles kept", whole.output).groups())
    assert 0 < kept < total / 2, "tiles on white glass are skipped"
    labels, table, features = read_outputs(tmp_path / "whole", "synthetic")
    assert labels.shape == (1024, 1536) and labels.max() > 20
    assert not labels[:90].any() and not labels[:, :190].any(), "nothing is predicted on the white background"
    pages = tifffile.TiffFile(tmp_path / "whole" / "synthetic.labels.tif").series[0].levels
    assert len(pages) >= 2

    calls = {"n": 0}
    save = resume.StripParts.save

    def stop_after_three(self, *args, **kwargs):
        save(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(resume.StripParts, "save", stop_after_three)
    stopped = predict(pyramid_slide, "--model", darkness_model, "--out", tmp_path / "again")
    assert stopped.exit_code == 130 and "stopped after strip 3" in stopped.output and "same command" in stopped.output
    assert not (tmp_path / "again" / "synthetic.geojson").exists()
    monkeypatch.setattr(resume.StripParts, "save", save)
    resumed = predict(pyramid_slide, "--model", darkness_model, "--out", tmp_path / "again")
    assert resumed.exit_code == 0, resumed.output
    assert "resuming after strip 3" in resumed.output
    labels_again, table_again, features_again = read_outputs(tmp_path / "again", "synthetic")
    np.testing.assert_array_equal(labels_again, labels)
    assert table_again == table and features_again == features


def test_a_three_class_model_segments_a_slide_strip_by_strip_like_the_whole_image(tmp_path, pyramid_slide, monkeypatch):
    from nuclei_tf.inference import segment, wsi

    monkeypatch.setattr(wsi, "strip_rows_for", lambda width: 64)  # many strips, clusters cut by their borders
    bundle = ModelBundle(three_class_darkness_model(), tile=64, overlap=0.25, mpp=0.25,
                         postprocess=PostProcess(threshold=0.5, split="markers", marker_threshold=0.5, min_size=8))
    folder = save_bundle(bundle, tmp_path / "three_class")
    result = predict(pyramid_slide, "--model", folder, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    labels, table, _ = read_outputs(tmp_path / "out", "synthetic")
    _, whole = segment(bundle, tifffile.imread(pyramid_slide, level=0))
    np.testing.assert_array_equal(labels > 0, whole > 0)
    pairs = np.unique(np.stack([labels[labels > 0], whole[whole > 0]]), axis=1)
    assert pairs.shape[1] == labels.max() == whole.max() > 20 and len(table.splitlines()) == labels.max() + 1


def test_a_rays_model_is_refused_on_a_slide_in_one_line(tmp_path, pyramid_slide):
    from nuclei_tf.models import build_model

    bundle = ModelBundle(build_model("unet_plus", base_filters=4, depth=3, head="rays"), tile=64, mpp=0.25,
                         postprocess=PostProcess(split="polygons"))
    result = predict(pyramid_slide, "--model", save_bundle(bundle, tmp_path / "rays"), "--out", tmp_path / "out")
    assert result.exit_code == 1 and "whole-slide prediction with a rays model is not supported" in result.output
    assert "Traceback" not in result.output, result.output


def test_a_read_failure_mid_run_keeps_the_finished_strips(tmp_path, darkness_model, pyramid_slide, monkeypatch):
    from nuclei_tf.data.errors import DataError
    from nuclei_tf.inference import sources, wsi

    monkeypatch.setattr(wsi, "strip_rows_for", lambda width: 64)
    read = sources.SlideSource.read

    def failing(self, x, y, width, height):
        if y >= 400:
            raise DataError(pyramid_slide, f"region at ({x}, {y}) failed to decode")
        return read(self, x, y, width, height)

    monkeypatch.setattr(sources.SlideSource, "read", failing)
    result = predict(pyramid_slide, "--model", darkness_model, "--out", tmp_path)
    assert result.exit_code == 1 and "failed to decode" in result.output and "finished strips are kept" in result.output
    monkeypatch.setattr(sources.SlideSource, "read", read)
    again = predict(pyramid_slide, "--model", darkness_model, "--out", tmp_path)
    assert again.exit_code == 0 and "resuming after strip" in again.output, again.output


def test_another_command_does_not_mix_into_a_stopped_run(tmp_path, darkness_model, pyramid_slide, monkeypatch):
    from nuclei_tf.inference import resume

    save = resume.StripParts.save

    def stop(self, *args, **kwargs):
        save(self, *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(resume.StripParts, "save", stop)
    assert predict(pyramid_slide, "--model", darkness_model, "--out", tmp_path).exit_code == 130
    monkeypatch.setattr(resume.StripParts, "save", save)
    other = predict(pyramid_slide, "--model", darkness_model, "--roi", "0,0,512,512", "--out", tmp_path)
    assert other.exit_code == 1 and "other settings (region)" in other.output


@pytest.mark.parametrize("downsample", [0.25 / 0.499, 1.0, 2.0, 0.7])
def test_level0_rows_resample_labels_by_nearest_neighbour(downsample):
    from types import SimpleNamespace

    from nuclei_tf.inference.wsi import level0_rows

    labels = np.random.default_rng(0).integers(0, 50, (37, 53)).astype(np.int32)
    view = SimpleNamespace(downsample=downsample, shape=labels.shape)
    blocks, top = [], 0
    for size in (5, 1, 13, 18):
        blocks.append((top, labels[top : top + size]))
        top += size
    out = np.vstack(list(level0_rows(iter(blocks), view)))
    height0, width0 = round(37 * downsample), round(53 * downsample)
    rows = np.minimum((np.arange(height0) / downsample).astype(int), 36)
    cols = np.minimum((np.arange(width0) / downsample).astype(int), 52)
    np.testing.assert_array_equal(out, labels[rows][:, cols])
