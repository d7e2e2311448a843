"""Every supported layout on tiny synthetic fixtures, and every kind of bad input."""
import numpy as np
import pytest
import tifffile
from PIL import Image

from nuclei_tf.data import DSB2018, DataError, InstanceFolder, MoNuSeg, TNBC
from nuclei_tf.data.io import image_shape, read_image, read_label
from nuclei_tf.data import labels as label_utils
from nuclei_tf.data.labels import id_counts, map_ids, relabel_contiguous
from nuclei_tf.data.monuseg_xml import rasterise_xml
from nuclei_tf.data.slide import open_slide

from conftest import region_xml, square


def test_monuseg_layout(synthetic_monuseg):
    monuseg = MoNuSeg(synthetic_monuseg)
    train, test = monuseg.train(), monuseg.test()
    assert [r.id for r in train] == ["TCGA-A7-A13E-01Z-00-DX1", "TCGA-B0-5698-01Z-00-DX1"]
    assert [r.label_format for r in train] == ["monuseg-xml", "instance-image"]
    assert [r.organ for r in train + test] == ["breast", "kidney", "kidney", "breast"]
    assert train[0].patient == "TCGA-A7-A13E"
    with pytest.warns(UserWarning, match="skipped 1 Region"):
        sample = train[0].load()
    assert sample.n_nuclei == 2 and sample.image.shape == (64, 64, 3)
    assert train[1].load().n_nuclei == 2


def test_xml_rasterisation_rules(tmp_path):
    xml = tmp_path / "a.xml"
    # a big nucleus; a small one on top of it; a duplicate of the small one; one crossing the left border
    xml.write_text(region_xml([square(2, 2, 20), square(5, 5, 4), square(5, 5, 4), square(-3, 30, 6)]))
    with pytest.warns(UserWarning, match="skipped 0 .* dropped 1 Region"):
        instances = rasterise_xml(xml, (40, 40))
    assert instances.max() == 3  # ids contiguous in XML order of the kept regions
    assert instances[7, 7] == 2  # the later duplicate of the small nucleus owns it, whole, on the large one
    assert (instances == 2).sum() == 25
    assert instances[2, 2] == 1 and instances[31, 0] == 3  # clipped to the border, not lost


def test_xml_without_regions_gives_empty_map(tmp_path):
    xml = tmp_path / "a.xml"
    xml.write_text("<Annotations/>")
    assert rasterise_xml(xml, (8, 8)).max() == 0


def test_tnbc_layout(synthetic_tnbc):
    records = TNBC(synthetic_tnbc).records()
    assert [r.id for r in records] == ["tnbc-01_1", "tnbc-01_2", "tnbc-02_1", "tnbc-03_1"]
    assert [r.patient for r in records] == ["01", "01", "02", "03"]
    for record in records:
        sample = record.load()
        assert sample.image.shape == (32, 32, 3) and sample.n_nuclei == 2


def test_generic_folder(synthetic_folder):
    (synthetic_folder / "metadata.csv").write_text("id,organ,patient\na,lung,p1\n")
    records = InstanceFolder(synthetic_folder, name="own").records()
    assert [(r.id, r.organ, r.patient) for r in records] == [("a", "lung", "p1"), ("b", "unknown", "b")]
    sample = records[0].load()
    assert sample.dataset == "own" and sample.n_nuclei == 1 and sample.instances.max() == 1


def test_dsb_layout_greyscale_only(synthetic_dsb):
    dsb = DSB2018(synthetic_dsb)
    assert len(dsb.records()) == 5
    grey = dsb.records(greyscale_only=True)
    assert [r.id for r in grey] == ["img00", "img01", "img02", "img03"]
    sample = grey[0].load()
    assert sample.n_nuclei == 2 and sample.image.shape == (32, 32, 3)


def test_relabel_contiguous_keeps_order():
    labels = np.array([[0, 7, 7], [3, 0, 12]])
    assert relabel_contiguous(labels).tolist() == [[0, 2, 2], [1, 0, 3]]
    assert relabel_contiguous(np.array([[5, 5]])).tolist() == [[1, 1]]


@pytest.mark.parametrize("chunk", [1, 7, 1 << 20])
def test_in_place_id_maps_equal_numpy_by_blocks_of_rows(monkeypatch, chunk):
    monkeypatch.setattr(label_utils, "MAP_CHUNK", chunk)
    labels = np.random.default_rng(0).integers(0, 40, (23, 17)).astype(np.int32)
    labels[labels % 3 == 0] = 0
    assert np.array_equal(id_counts(labels), np.bincount(labels.ravel()))
    lookup = np.random.default_rng(1).integers(0, 99, 40).astype(np.int32)
    expected = lookup[labels]
    inplace = labels.copy()
    assert map_ids(inplace, lookup, copy=False) is inplace and np.array_equal(inplace, expected)
    assert np.array_equal(map_ids(labels, lookup), expected) and not np.array_equal(labels, expected)
    wider = labels.astype(np.int64)  # another dtype than the lookup's: mapped into a new array
    assert np.array_equal(map_ids(wider, lookup, copy=False), expected) and np.array_equal(wider, labels)
    contiguous = labels.copy()
    assert relabel_contiguous(contiguous, copy=False) is contiguous
    assert np.array_equal(contiguous, relabel_contiguous(labels))


# ---- documented conversions -------------------------------------------------------------

def test_greyscale_image_becomes_rgb(tmp_path):
    grey = np.arange(16, dtype=np.uint8).reshape(4, 4)
    Image.fromarray(grey).save(tmp_path / "g.png")
    rgb = read_image(tmp_path / "g.png")
    assert rgb.shape == (4, 4, 3) and np.array_equal(rgb[..., 2], grey)


def test_16bit_image_is_rescaled(tmp_path):
    data = np.array([[0, 257, 65535]], dtype=np.uint16)
    tifffile.imwrite(tmp_path / "a.tif", np.dstack([data] * 3))
    assert read_image(tmp_path / "a.tif")[0, :, 0].tolist() == [0, 1, 255]


def test_transparency_is_composited_on_white_and_opaque_pixels_keep_their_values(tmp_path):
    """A transparent pixel is slide background (white), whatever RGB it stores; as OpenSlide's reads."""
    rgba = np.array([[[200, 100, 0, 255], [0, 0, 0, 0], [200, 100, 0, 128]]], np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    np.testing.assert_array_equal(read_image(tmp_path / "rgba.png")[0], [[200, 100, 0], [255, 255, 255], [227, 177, 127]])
    grey_alpha = np.array([[[40, 255], [40, 0], [40, 128]]], np.uint8)
    Image.fromarray(grey_alpha, "LA").save(tmp_path / "la.png")
    np.testing.assert_array_equal(read_image(tmp_path / "la.png")[0], [[40] * 3, [255] * 3, [147] * 3])
    tifffile.imwrite(tmp_path / "rgba16.tif", rgba.astype(np.uint16) * 257, photometric="rgb", extrasamples=["unassalpha"])
    np.testing.assert_array_equal(read_image(tmp_path / "rgba16.tif"), read_image(tmp_path / "rgba.png"))
    palette = Image.fromarray(np.array([[0, 1]], np.uint8), "P")
    palette.putpalette([10, 20, 30, 90, 80, 70])
    palette.save(tmp_path / "indexed.png", transparency=1)
    np.testing.assert_array_equal(read_image(tmp_path / "indexed.png")[0], [[10, 20, 30], [255, 255, 255]])


def test_planar_rgb_tiff_is_read_interleaved(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 255, (3, 20, 30), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "planar.tif", rgb, photometric="rgb", planarconfig="separate")
    np.testing.assert_array_equal(read_image(tmp_path / "planar.tif"), rgb.transpose(1, 2, 0))
    assert image_shape(tmp_path / "planar.tif") == (20, 30)
    with open_slide(tmp_path / "planar.tif") as slide:
        assert slide.dimensions == (30, 20)
        np.testing.assert_array_equal(slide.read_region(0, 0, 0, 30, 20), rgb.transpose(1, 2, 0))


def test_tiff_stacks_are_refused_not_read_as_their_first_plane(tmp_path):
    path = tmp_path / "z.tif"
    tifffile.imwrite(path, np.zeros((5, 20, 30), np.uint8))
    _raises_naming(path, "stack of 5 images", read_image, path)
    tifffile.imwrite(tmp_path / "one.tif", np.zeros((1, 20, 30), np.uint8))  # a single plane is no stack
    assert read_image(tmp_path / "one.tif").shape == (20, 30, 3)


def test_images_above_pillows_decompression_bomb_limit_are_read(tmp_path, monkeypatch):
    """Whole slides exceed Pillow's 178-megapixel refusal; the limit is lifted for our reads only."""
    Image.fromarray(np.full((40, 40, 3), 7, np.uint8)).save(tmp_path / "slide.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 1600 pixels > 2 x 100: Pillow would refuse
    assert read_image(tmp_path / "slide.png").shape == (40, 40, 3)
    assert Image.MAX_IMAGE_PIXELS == 100


# ---- bad input: one DataError naming the file --------------------------------------------

def _raises_naming(path, match, func, *args):
    with pytest.raises(DataError, match=match) as info:
        func(*args)
    assert str(path) in str(info.value)


def test_missing_folders(tmp_path):
    for loader in (MoNuSeg, TNBC, DSB2018, InstanceFolder):
        with pytest.raises(DataError):
            loader(tmp_path / "nowhere")
    _raises_naming(tmp_path, "not a MoNuSeg folder", MoNuSeg, tmp_path)


def test_corrupt_tiff(tmp_path):
    path = tmp_path / "bad.tif"
    path.write_bytes(b"II*\x00garbage-that-is-not-a-tiff")
    _raises_naming(path, "corrupt or truncated", read_image, path)


def test_truncated_png(tmp_path):
    path = tmp_path / "cut.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:200])
    _raises_naming(path, "corrupt or truncated", read_image, path)


def test_truncated_lzw_tiff(tmp_path):
    path = tmp_path / "cut.tif"
    tifffile.imwrite(path, np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8), compression="lzw")
    path.write_bytes(path.read_bytes()[:300])
    _raises_naming(path, "corrupt or truncated", read_image, path)


def test_unparsable_xml(synthetic_monuseg):
    xml = synthetic_monuseg / "MoNuSeg 2018 Training Data" / "Annotations" / "TCGA-A7-A13E-01Z-00-DX1.xml"
    xml.write_text("<Annotations><Region>")
    record = MoNuSeg(synthetic_monuseg).train()[0]
    _raises_naming(xml, "unparsable XML", record.load)


def test_malformed_vertex(tmp_path):
    xml = tmp_path / "v.xml"
    xml.write_text('<Annotations><Region Id="4"><Vertices><Vertex X="a" Y="1"/></Vertices></Region></Annotations>')
    _raises_naming(xml, "Region 4 has a malformed Vertex", rasterise_xml, xml, (8, 8))


def test_label_size_mismatch(synthetic_folder):
    label = synthetic_folder / "labels" / "a.tif"
    tifffile.imwrite(label, np.zeros((16, 32), np.int32))
    record = InstanceFolder(synthetic_folder).records()[0]
    _raises_naming(label, r"label size \(16, 32\) does not match image a.png", record.load)


def test_missing_label(synthetic_folder):
    (synthetic_folder / "labels" / "b.tif").unlink()
    _raises_naming(synthetic_folder / "images" / "b.png", "no label image", InstanceFolder(synthetic_folder).records)


def test_monuseg_image_without_any_ground_truth(synthetic_monuseg):
    (synthetic_monuseg / "derived-instance-labels" / "TCGA-B0-5698-01Z-00-DX1.png").unlink()
    record = MoNuSeg(synthetic_monuseg).train()[1]
    _raises_naming(record.image_path, "has no ground truth", record.load)


@pytest.mark.parametrize(
    "array, match",
    [
        (np.full((4, 4), 2.5, np.float32), r"non-integer ids \(2.5 at x=0, y=0\); ids are whole numbers"),
        (np.array([[0, np.nan], [1, 2]], np.float64), r"non-integer ids \(nan at x=1, y=0\)"),
        (np.zeros((4, 4), np.complex64), "must hold integers"),
        (np.full((4, 4), -1, np.int16), "negative ids"),
        (np.zeros((4, 4, 3), np.uint8), "single-channel"),
    ],
)
def test_bad_label_maps(tmp_path, array, match):
    path = tmp_path / "l.tif"
    tifffile.imwrite(path, array)
    _raises_naming(path, match, read_label, path)


def test_whole_number_float_and_one_bit_label_maps_read_exactly(tmp_path):
    ids = np.array([[0, 3, 3], [70000, 0, 1]])
    tifffile.imwrite(tmp_path / "f.tif", ids.astype(np.float32))
    np.testing.assert_array_equal(read_label(tmp_path / "f.tif"), ids)
    Image.fromarray(np.array([[0, 1], [1, 0]], bool)).save(tmp_path / "bit.png")  # a 1-bit PNG
    np.testing.assert_array_equal(read_label(tmp_path / "bit.png"), [[0, 1], [1, 0]])


def test_unsupported_pixel_types(tmp_path):
    path = tmp_path / "f.tif"
    tifffile.imwrite(path, np.zeros((4, 4, 3), np.float32), photometric="rgb")
    _raises_naming(path, "unsupported pixel type float32", read_image, path)
    path2 = tmp_path / "c.tif"
    tifffile.imwrite(path2, np.zeros((4, 4, 5), np.uint8), photometric="minisblack", planarconfig="contig")
    _raises_naming(path2, "grey TIFF with 5 samples per pixel and ExtraSamples UNSPECIFIED", read_image, path2)


def test_palette_cmyk_and_min_is_white_images_are_read_as_a_viewer_shows_them(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    image = Image.fromarray(rgb)
    image.convert("CMYK").save(tmp_path / "cmyk.jpg", quality=100)
    assert np.abs(read_image(tmp_path / "cmyk.jpg").astype(int) - rgb).mean() < 2
    palette = image.quantize(16)
    palette.save(tmp_path / "indexed.png")
    np.testing.assert_array_equal(read_image(tmp_path / "indexed.png"), np.asarray(palette.convert("RGB")))
    tifffile.imwrite(tmp_path / "cmyk.tif", np.asarray(image.convert("CMYK")), photometric="separated")
    np.testing.assert_array_equal(read_image(tmp_path / "cmyk.tif"), rgb)
    colours = np.stack([np.arange(256), 255 - np.arange(256), np.full(256, 7)]).astype(np.uint16) * 257
    tifffile.imwrite(tmp_path / "indexed.tif", np.arange(12, dtype=np.uint8).reshape(3, 4), photometric="palette", colormap=colours)
    np.testing.assert_array_equal(read_image(tmp_path / "indexed.tif")[1, 2], [6, 249, 7])
    tifffile.imwrite(tmp_path / "white.tif", np.full((4, 4), 200, np.uint8), photometric="miniswhite")
    assert read_image(tmp_path / "white.tif")[0, 0, 0] == 55
    Image.fromarray(np.arange(12, dtype=np.uint8).reshape(3, 4)).convert("P").save(tmp_path / "labels.png")
    np.testing.assert_array_equal(read_label(tmp_path / "labels.png"), np.arange(12).reshape(3, 4))  # ids, not colours
