"""QuPath GeoJSON -> training tiles: a hand-made annotation file rasterised pixel by pixel."""
import csv
import json

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner
from PIL import Image

from nuclei_tf.cli.main import cli
from nuclei_tf.data import split_protocol
from nuclei_tf.data.rasterise import polygon_mask

from conftest import random_rgb


def rect(x0, y0, x1, y1):
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]


def feature(geometry_type, coordinates, name=None, classification=None):
    properties = {"objectType": "annotation"}
    if name:
        properties["classification"] = {"name": name, "color": [255, 0, 0]}
    if classification:
        properties["classification"] = classification  # older QuPath: a plain string
    return {"type": "Feature", "geometry": {"type": geometry_type, "coordinates": coordinates}, "properties": properties}


HAND_MADE = [
    feature("Polygon", [rect(2, 2, 38, 28)], "Region"),
    feature("Polygon", [rect(4, 4, 10, 9), rect(6, 6, 8, 7)], "Tumor"),  # A: 6 x 5 px with a 2 x 1 px hole
    feature("MultiPolygon", [[rect(20, 5, 23, 8)], [rect(26, 5, 28, 7)]], "Lymphocyte"),  # B: one nucleus, two parts
    feature("Polygon", [[[12, 12], [18, 12], [12, 18], [12, 12]]], "Tumor"),  # C: a right triangle
    feature("Polygon", [rect(8, 8, 12, 11)], classification="Tumor"),  # D: overlaps A; the smaller keeps the pixels
    feature("Polygon", [rect(0, 20, 4, 24)], "Tumor"),  # E: crosses the region's edge, clipped to it
    feature("Point", [30, 20], "Tumor"),  # a point outlines no area
]


def expected_labels():
    """The hand-computed instance map in image pixels (pixel (r, c) is in when its centre is)."""
    labels = np.zeros((30, 40), np.int32)
    labels[4:9, 4:10] = 1
    labels[6, 6:8] = 0  # the hole
    labels[5:8, 20:23] = 2
    labels[5:7, 26:28] = 2
    rows, cols = np.mgrid[:30, :40]
    labels[(rows >= 12) & (cols >= 12) & (rows + cols <= 28)] = 3  # centres strictly left of x + y = 30
    labels[8:11, 8:12] = 4
    labels[20:24, 0:4] = 5
    outside = np.ones((30, 40), bool)
    outside[2:28, 2:38] = False
    labels[outside] = 0
    return labels


def write_case(tmp_path, features=HAND_MADE, shape=(30, 40)):
    image = random_rgb(shape, seed=5)
    Image.fromarray(image).save(tmp_path / "img.png")
    (tmp_path / "img.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return image


def test_a_hand_made_qupath_file_is_rasterised_pixel_by_pixel(tmp_path):
    image = write_case(tmp_path)
    result = CliRunner().invoke(cli, ["import-annotations", str(tmp_path / "img.png"), str(tmp_path / "img.geojson"),
                                      "--mpp", "0.25", "--to-mpp", "0.25", "--out", str(tmp_path / "own")])
    assert result.exit_code == 0, result.output
    assert "5 nuclei in 1 tiles of 1 region(s) at 0.25 um/px" in result.output and "1 Point feature(s) skipped" in result.output
    labels = tifffile.imread(tmp_path / "own" / "labels" / "img_r1_x2_y2.tif")
    np.testing.assert_array_equal(labels, expected_labels()[2:28, 2:38])
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "own" / "images" / "img_r1_x2_y2.png")), image[2:28, 2:38])
    rows = list(csv.DictReader(open(tmp_path / "own" / "classes.csv")))
    assert [(r["id"], r["classification"]) for r in rows] == [("1", "Tumor"), ("2", "Lymphocyte"), ("3", "Tumor"),
                                                              ("4", "Tumor"), ("5", "Tumor")]
    assert json.loads((tmp_path / "own" / "dataset.json").read_text())["mpp"] == 0.25
    (record,) = split_protocol("folder", data=tmp_path / "own")["train"]  # ready for fit --data
    np.testing.assert_array_equal(record.load().instances, labels)


def test_tiles_are_cut_at_the_output_resolution_and_classes_filtered(tmp_path):
    write_case(tmp_path)
    result = CliRunner().invoke(cli, ["import-annotations", str(tmp_path / "img.png"), str(tmp_path / "img.geojson"),
                                      "--mpp", "0.5", "--to-mpp", "0.25", "--tile", "32", "--class", "Lymphocyte",
                                      "--out", str(tmp_path / "own")])
    assert result.exit_code == 0 and "4 polygon(s) of other classes left out" in result.output, result.output
    names = sorted(p.name for p in (tmp_path / "own" / "labels").iterdir())
    assert names == ["img_r1_x18_y18.tif", "img_r1_x18_y2.tif", "img_r1_x2_y18.tif", "img_r1_x2_y2.tif",
                     "img_r1_x34_y18.tif", "img_r1_x34_y2.tif"]  # 72 x 52 px at 0.25 um/px in tiles of 32
    whole = np.zeros((52, 72), np.int32)  # x2: image (x, y) -> grid ((x - 2) * 2, (y - 2) * 2)
    whole[6:12, 36:42] = 1
    whole[6:10, 48:52] = 1
    tiles = {(x, y): tifffile.imread(tmp_path / "own" / "labels" / f"img_r1_x{x}_y{y}.tif") for x in (2, 18, 34) for y in (2, 18)}
    stitched = np.block([[tiles[(2, 2)], tiles[(18, 2)], tiles[(34, 2)]], [tiles[(2, 18)], tiles[(18, 18)], tiles[(34, 18)]]])
    np.testing.assert_array_equal(stitched > 0, whole > 0)
    assert np.unique(tiles[(18, 2)]).tolist() == [0, 1] and tiles[(34, 2)].max() == 0  # the MultiPolygon's two parts: one id
    again = CliRunner().invoke(cli, ["import-annotations", str(tmp_path / "img.png"), str(tmp_path / "img.geojson"),
                                     "--mpp", "0.5", "--to-mpp", "0.5", "--out", str(tmp_path / "own")])
    assert again.exit_code == 1 and "dataset.json: states mpp 0.25" in again.output


def test_without_a_region_a_plain_image_is_annotated_whole_and_needs_its_resolution(tmp_path):
    write_case(tmp_path, [feature("Polygon", [rect(4, 4, 10, 9)], "Tumor")])
    refused = CliRunner().invoke(cli, ["import-annotations", str(tmp_path / "img.png"), str(tmp_path / "img.geojson"),
                                       "--to-mpp", "0.25", "--out", str(tmp_path / "own")])
    assert refused.exit_code == 1 and "img.png: records no resolution: pass --mpp" in refused.output
    assert not (tmp_path / "own" / "dataset.json").exists()
    result = CliRunner().invoke(cli, ["import-annotations", str(tmp_path / "img.png"), str(tmp_path / "img.geojson"),
                                      "--mpp", "0.25", "--to-mpp", "0.25", "--out", str(tmp_path / "own")])
    assert result.exit_code == 0, result.output
    labels = tifffile.imread(tmp_path / "own" / "labels" / "img_r1_x0_y0.tif")
    assert labels.shape == (30, 40) and labels.sum() == 30 and labels[4:9, 4:10].all()


@pytest.mark.parametrize("document, message", [
    ("not json", "is not valid JSON"),
    (json.dumps({"type": "FeatureCollection", "features": [{"type": "Feature"}]}), "feature 0 has no geometry object"),
    (json.dumps([feature("Polygon", [[[0, 0], [1, 1]]])]), "feature 0: a Polygon ring has fewer than 3 finite points"),
    (json.dumps([feature("Circle", [0, 0])]), "feature 0: unknown geometry type 'Circle'"),
])
def test_a_bad_annotation_file_is_refused_naming_it(tmp_path, document, message):
    write_case(tmp_path)
    (tmp_path / "img.geojson").write_text(document)
    result = CliRunner().invoke(cli, ["import-annotations", str(tmp_path / "img.png"), str(tmp_path / "img.geojson"),
                                      "--mpp", "0.25", "--to-mpp", "0.25", "--out", str(tmp_path / "own")])
    assert result.exit_code == 1 and "img.geojson: " in result.output and message in result.output, result.output


def test_polygons_sharing_an_edge_share_no_pixel_and_cover_their_union():
    left = polygon_mask([np.array(rect(0, 0, 5.3, 6.7), float)], (8, 8))
    right = polygon_mask([np.array(rect(5.3, 0, 8, 6.7), float)], (8, 8))
    assert not (left & right).any() and (left | right)[:7].all() and not (left | right)[7:].any()
    assert left[:7, :5].all() and not left[:, 5:].any() and not left[7:].any()  # centres 0.5-4.5 < 5.3 <= 5.5; rows to 6.5 < 6.7


def test_a_region_of_a_real_slide_is_brought_to_the_model_resolution(tmp_path):
    from conftest import SHARED_DATA

    slide = SHARED_DATA / "WSI" / "cmu-1-small-region.svs"
    if not slide.is_file():
        pytest.skip(f"real slide {slide} not found (../shared/data/WSI)")
    nucleus = feature("Polygon", [rect(120, 110, 130, 118)], "Tumor")  # 10 x 8 level-0 px at 0.499 um/px
    (tmp_path / "a.geojson").write_text(json.dumps([nucleus]))
    refused = CliRunner().invoke(cli, ["import-annotations", str(slide), str(tmp_path / "a.geojson"), "--out", str(tmp_path / "own")])
    assert refused.exit_code == 1 and "has no annotation classified 'Region'" in refused.output
    (tmp_path / "a.geojson").write_text(json.dumps([feature("Polygon", [rect(100, 100, 164, 132)], "Region"), nucleus]))
    result = CliRunner().invoke(cli, ["import-annotations", str(slide), str(tmp_path / "a.geojson"), "--out", str(tmp_path / "own")])
    assert result.exit_code == 0 and "1 nuclei in 1 tiles" in result.output, result.output
    (name,) = [p.name for p in (tmp_path / "own" / "labels").iterdir()]
    labels = tifffile.imread(tmp_path / "own" / "labels" / name)
    downsample = 0.25 / 0.499  # the shipped model's 0.25 um/px: about 2 grid pixels per slide pixel
    assert name == "img_r1_x100_y100.tif".replace("img", slide.stem)
    assert labels.shape == (round(32 / downsample), round(64 / downsample))
    rows, cols = np.nonzero(labels)
    assert abs(len(rows) - 80 / downsample**2) < 0.1 * 80 / downsample**2  # its 80 slide px in grid px
    assert abs(cols.min() - 20 / downsample) <= 1 and abs(rows.min() - 10 / downsample) <= 1
    assert np.asarray(Image.open(tmp_path / "own" / "images" / name.replace(".tif", ".png"))).shape == (*labels.shape, 3)
