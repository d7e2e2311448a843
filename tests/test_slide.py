"""nuclei_tf.data.slide: one lazy Slide interface for whole slides and plain images, with mpp."""
import math
import sys

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image

from conftest import SHARED_DATA, random_rgb
from nuclei_tf.data.errors import DataError
from nuclei_tf.data import slide as slide_module
from nuclei_tf.data.io import on_white
from nuclei_tf.data.slide import ImageSlide, OpenSlideSlide, ResampledView, check_mpp, open_slide

CMU, TCGA, BOXES = "cmu-1-small-region.svs", "tcga-cr-7395-01a-01-ts1.svs", "boxes.tiff"


def _wsi(name):
    path = SHARED_DATA / "WSI" / name
    if not path.is_file():
        pytest.skip(f"real slide not found at {path} (set NUCLEI_TF_DATA to the folder holding WSI/)")
    return path


def _openslide_rgb(path, x, y, level, w, h):
    openslide = pytest.importorskip("openslide")
    with openslide.OpenSlide(str(path)) as osr:
        rgba = np.asarray(osr.read_region((x, y), level, (w, h)))
    assert (rgba[..., 3] == 255).all()  # inside the scan: RGB is the exact answer
    return rgba[..., :3]


def _pyramid_tiff(path, levels, **tags):
    with tifffile.TiffWriter(path) as tif:
        for index, level in enumerate(levels):
            tif.write(level, tile=(16, 16), photometric="rgb", compression="zlib",
                      subfiletype=1 if index else 0, **(tags if index == 0 else {}))


# --- check_mpp -------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [0, -1, math.nan, math.inf, 352.8, "abc", None])
def test_check_mpp_refuses(value):
    with pytest.raises(DataError, match=r"^somewhere\.tif \(tag\): microns per pixel"):
        check_mpp(value, "somewhere.tif (tag)")


def test_check_mpp_explains_screen_resolution_tag():
    with pytest.raises(DataError, match=r"352\.8.*screen-resolution.*--mpp"):
        check_mpp(352.8, "x.tif")


def test_check_mpp_accepts():
    assert check_mpp(0.2528, "x") == 0.2528
    assert check_mpp("0.5", "x") == 0.5


# --- real slides -----------------------------------------------------------------------------

def test_cmu_geometry_and_read_region():
    path = _wsi(CMU)
    with open_slide(path) as slide:
        assert isinstance(slide, OpenSlideSlide)
        assert (slide.vendor, slide.is_whole_slide) == ("aperio", True)
        assert slide.dimensions == (2220, 2967)
        assert slide.level_dimensions == [(2220, 2967)] and slide.level_downsamples == [1.0]
        assert slide.mpp == pytest.approx(0.499)
        region = slide.read_region(1000, 1200, 0, 64, 48)
        assert region.dtype == np.uint8 and region.shape == (48, 64, 3)
        np.testing.assert_array_equal(region, _openslide_rgb(path, 1000, 1200, 0, 64, 48))
        edge = slide.read_region(2200, 2950, 0, 40, 30)  # 20 x 17 inside, the rest outside
        np.testing.assert_array_equal(edge[:17, :20], _openslide_rgb(path, 2200, 2950, 0, 20, 17))
        assert (edge[17:] == 255).all() and (edge[:, 20:] == 255).all()
        assert (slide.read_region(-50, -50, 0, 10, 10) == 255).all()


def test_cmu_upsampled_view():
    path = _wsi(CMU)
    with open_slide(path) as slide:
        view = ResampledView(slide, model_mpp=0.25)
        assert view.downsample == pytest.approx(0.25 / 0.499)
        assert 1 / view.downsample == pytest.approx(1.996)
        assert view.level == 0 and view.origin == (0, 0) and not view.assumed_mpp
        assert view.shape == (round(2967 / view.downsample), round(2220 / view.downsample))
        assert view.shape[0] == pytest.approx(2 * 2967, rel=0.01)
        box = view.read(400, 600, 96, 80)
        x0, y0 = round(400 * view.downsample), round(600 * view.downsample)
        x1, y1 = round(496 * view.downsample), round(680 * view.downsample)
        region = _openslide_rgb(path, x0, y0, 0, x1 - x0, y1 - y0)
        expected = cv2.resize(region, (96, 80), interpolation=cv2.INTER_LINEAR)
        np.testing.assert_array_equal(box, expected)
        assert view.to_level0(400, 600) == pytest.approx((400 * view.downsample, 600 * view.downsample))


def test_cmu_native_view_is_exact_and_roi_reads_context():
    path = _wsi(CMU)
    with open_slide(path) as slide:
        view = ResampledView(slide, model_mpp=0.499, roi=(500, 700, 300, 200))
        assert view.downsample == 1.0 and view.level == 0
        assert view.shape == (200, 300) and view.origin == (500, 700)
        np.testing.assert_array_equal(view.read(10, 20, 50, 40), _openslide_rgb(path, 510, 720, 0, 50, 40))
        # boxes past the ROI read the real slide around it (context), not white
        np.testing.assert_array_equal(view.read(-20, -10, 30, 30), _openslide_rgb(path, 480, 690, 0, 30, 30))
        assert view.to_level0(10, 20) == (510.0, 720.0)
        # ... and outside the slide is white
        corner = ResampledView(slide, 0.499, roi=(2200, 2950, 20, 17)).read(10, 10, 20, 20)
        assert (corner[7:] == 255).all() and (corner[:, 10:] == 255).all()


def test_tcga_without_mpp():
    path = _wsi(TCGA)
    with open_slide(path) as slide:
        assert slide.vendor == "aperio" and slide.mpp is None
        assert slide.level_dimensions == [(4443, 3567), (2221, 1783)]
        with pytest.raises(DataError, match=rf"^{path}: no microns-per-pixel in {TCGA}; pass --mpp"):
            ResampledView(slide, model_mpp=0.5)
        view = ResampledView(slide, model_mpp=0.5, slide_mpp=0.5)
        assert view.downsample == 1.0 and view.level == 0
        with pytest.raises(DataError, match="--mpp"):
            ResampledView(slide, model_mpp=0.5, slide_mpp=352.8)


def test_tcga_picks_level_1():
    path = _wsi(TCGA)
    with open_slide(path) as slide:
        view = ResampledView(slide, model_mpp=0.5, slide_mpp=0.25)
        assert view.downsample == 2.0 and view.level == 1  # level 1 is 2.0005x: within the tolerance
        assert view.shape == (round(3567 / 2), round(4443 / 2))
        box = view.read(1000, 900, 64, 48)  # tissue
        assert box.std() > 10
        ds1 = slide.level_downsamples[1]  # level-0 (2000, 1800) is level-1 pixel (1000, 900)
        expected = slide.read_region(round(1000 * ds1), round(900 * ds1), 1, 64, 48)
        np.testing.assert_array_equal(box, expected)
        assert ResampledView(slide, model_mpp=0.49, slide_mpp=0.25).level == 0


def test_boxes_tiff_mpp_refused_at_view():
    path = _wsi(BOXES)
    with open_slide(path) as slide:
        assert (slide.vendor, slide.is_whole_slide) == ("generic-tiff", True)
        assert slide.level_dimensions == [(300, 250), (150, 125), (75, 62), (37, 31)]
        assert slide.level_downsamples[:2] == [1.0, 2.0]
        assert slide.mpp == pytest.approx(352.78, abs=0.01)  # what the file says, unvalidated
        with pytest.raises(DataError, match=rf"^{path} \(openslide.mpp-x/mpp-y\): .*screen-resolution.*--mpp"):
            ResampledView(slide, model_mpp=0.5)
        view = ResampledView(slide, model_mpp=1.0, slide_mpp=0.25)  # --mpp overrides the tag
        assert view.level == 1 and view.shape == (62, 75)  # level 2 is 4.016x: coarser than the model
        assert ResampledView(slide, model_mpp=1.01, slide_mpp=0.25).level == 2


def test_thumbnail_reads_a_small_level(monkeypatch):
    path = _wsi(BOXES)
    with open_slide(path) as slide:
        levels = []
        read = slide.read_region
        monkeypatch.setattr(slide, "read_region", lambda *a: levels.append(a[2]) or read(*a))
        assert slide.thumbnail(100).shape == (83, 100, 3) and levels == [1]
        assert slide.thumbnail(40).shape == (33, 40, 3) and levels[-1] == 2
        full = slide.thumbnail(1000)
        assert full.shape == (250, 300, 3) and levels[-1] == 0
        np.testing.assert_array_equal(full, read(0, 0, 0, 300, 250))


# --- synthetic files -------------------------------------------------------------------------

def test_synthetic_pyramid_tiff(tmp_path):
    pytest.importorskip("openslide")
    level0 = random_rgb((128, 160), seed=5)
    levels = [level0, cv2.resize(level0, (80, 64), interpolation=cv2.INTER_AREA),
              cv2.resize(level0, (40, 32), interpolation=cv2.INTER_AREA)]
    path = tmp_path / "pyramid.tiff"
    _pyramid_tiff(path, levels, resolution=(40000, 40000), resolutionunit="CENTIMETER")  # 0.25 um/px
    with open_slide(path) as slide:
        assert isinstance(slide, OpenSlideSlide) and slide.vendor == "generic-tiff"
        assert slide.level_dimensions == [(160, 128), (80, 64), (40, 32)]
        assert slide.level_downsamples == [1.0, 2.0, 4.0]
        assert slide.mpp == pytest.approx(0.25)
        assert ResampledView(slide, 0.125).level == 0
        assert ResampledView(slide, 0.25).level == 0
        assert ResampledView(slide, 0.6).level == 1
        assert ResampledView(slide, 4.0).level == 2
        view = ResampledView(slide, model_mpp=0.5)
        assert view.level == 1 and view.shape == (64, 80)
        np.testing.assert_array_equal(view.read(0, 0, 80, 64), levels[1])
        np.testing.assert_array_equal(slide.read_region(0, 0, 0, 160, 128), level0)
        assert (view.read(70, 60, 20, 10)[4:] == 255).all()


def test_plain_png(tmp_path):
    array = random_rgb((50, 70), seed=1)
    path = tmp_path / "tile.png"
    Image.fromarray(array).save(path)
    with open_slide(path) as slide:
        assert isinstance(slide, ImageSlide)
        assert (slide.vendor, slide.is_whole_slide, slide.mpp) == ("image", False, None)
        assert slide.dimensions == (70, 50) and slide.level_downsamples == [1.0]
        view = ResampledView(slide, model_mpp=0.25)
        assert view.assumed_mpp and view.downsample == 1.0 and view.shape == (50, 70)
        np.testing.assert_array_equal(view.read(0, 0, 70, 50), array)
        edge = view.read(60, 40, 20, 20)
        np.testing.assert_array_equal(edge[:10, :10], array[40:, 60:])
        assert (edge[10:] == 255).all() and (edge[:, 10:] == 255).all()
        assert slide.thumbnail(35).shape == (25, 35, 3)
        half = ResampledView(slide, model_mpp=0.5, slide_mpp=0.25)  # --mpp given: resampled, not assumed
        assert not half.assumed_mpp and half.shape == (25, 35)
        expected = cv2.resize(array, (35, 25), interpolation=cv2.INTER_AREA)
        np.testing.assert_array_equal(half.read(0, 0, 35, 25), expected)


def test_plain_tiff_resolution_tags(tmp_path):
    array = random_rgb((40, 30), seed=2)
    cm = tmp_path / "cm.tif"
    tifffile.imwrite(cm, array, resolution=(40000, 40000), resolutionunit="CENTIMETER")
    inch = tmp_path / "inch.tif"
    tifffile.imwrite(inch, array, resolution=(72, 72), resolutionunit="INCH")
    bare = tmp_path / "bare.tif"
    tifffile.imwrite(bare, array, resolution=(72, 72), resolutionunit="NONE")
    with open_slide(cm) as slide:
        assert isinstance(slide, ImageSlide) and slide.mpp == pytest.approx(0.25)
        assert slide.dimensions == (30, 40)
        np.testing.assert_array_equal(slide.read_region(0, 0, 0, 30, 40), array)
        assert ResampledView(slide, 0.5).shape == (20, 15)
    with open_slide(inch) as slide:
        assert slide.mpp == pytest.approx(352.78, abs=0.01)
        view = ResampledView(slide, 0.25)  # a plain image's 72 dpi tag (some MoNuSeg TIFFs): taken as not recorded
        assert view.assumed_mpp and view.downsample == 1.0
        assert ResampledView(slide, 0.5, slide_mpp=0.25).downsample == 2.0
    with open_slide(bare) as slide:
        assert slide.mpp is None and ResampledView(slide, 0.25).assumed_mpp


def test_plain_image_without_openslide(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "openslide", None)  # import openslide now fails
    path = tmp_path / "tile.png"
    Image.fromarray(random_rgb((8, 8))).save(path)
    with open_slide(path) as slide:
        assert slide.read_region(0, 0, 0, 8, 8).shape == (8, 8, 3)
    (tmp_path / "x.svs").write_bytes(b"\0" * 64)
    with pytest.raises(DataError, match="OpenSlide is not installed"):
        open_slide(tmp_path / "x.svs")


def test_transparent_pixels_composited_on_white(tmp_path):
    pytest.importorskip("openslide")
    path = tmp_path / "pyramid.tiff"
    _pyramid_tiff(path, [random_rgb((32, 32))])
    with open_slide(path) as slide:

        class FakeOpenSlide:  # openslide-python returns straight (not premultiplied) RGBA
            def read_region(self, location, level, size):
                rgba = np.array([[[200, 100, 0, 255], [200, 100, 0, 0], [200, 100, 0, 128]]], np.uint8)
                return Image.fromarray(rgba, "RGBA")

        slide._osr, real = FakeOpenSlide(), slide._osr
        try:
            rgb = slide.read_region(0, 0, 0, 3, 1)
        finally:
            slide._osr = real
        np.testing.assert_array_equal(rgb[0], [[200, 100, 0], [255, 255, 255], [227, 177, 127]])


def test_compositing_on_white_is_exact_for_every_colour_and_alpha():
    c, a = np.meshgrid(np.arange(256), np.arange(256))
    rgba = np.stack([c, c, 255 - c, a], axis=-1).astype(np.uint8)
    expected = np.floor((rgba[..., :3] * (a[..., None] / 255.0) + 255 * (1 - a[..., None] / 255.0)) + 0.5)
    np.testing.assert_array_equal(on_white(rgba, np.empty((256, 256, 3), np.uint8)), expected)


def test_a_wide_region_is_read_in_bands_equal_to_one_read(tmp_path, monkeypatch):
    pytest.importorskip("openslide")
    path = tmp_path / "pyramid.tiff"
    _pyramid_tiff(path, [random_rgb((96, 128)), random_rgb((48, 64))])
    with open_slide(path) as slide:
        whole = [slide.read_region(4, 6, level, 50, 37) for level in (0, 1)]
        monkeypatch.setattr(slide_module, "READ_PIXELS", 50 * 5)
        for level in (0, 1):
            np.testing.assert_array_equal(slide.read_region(4, 6, level, 50, 37), whole[level])


def test_multipage_tiff_not_opened_by_openslide_is_refused(tmp_path):
    path = tmp_path / "stack.tif"
    with tifffile.TiffWriter(path) as tif:
        tif.write(random_rgb((16, 16)), photometric="rgb")
        tif.write(random_rgb((8, 8)), photometric="rgb")
    with pytest.raises(DataError, match=rf"^{path}: unsupported or corrupt slide: TIFF holds 2 pages"):
        open_slide(path)


# --- errors ----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "roi", [(-1, 0, 10, 10), (0, 0, 0, 10), (0, 0, 71, 50), (60, 45, 11, 5), (0.5, 0, 10, 10), (1, 2, 3)]
)
def test_roi_outside_slide(tmp_path, roi):
    path = tmp_path / "tile.png"
    Image.fromarray(random_rgb((50, 70))).save(path)
    with open_slide(path) as slide, pytest.raises(DataError, match=rf"^{path}: ROI"):
        ResampledView(slide, 0.25, roi=roi)


def test_corrupt_and_missing_files(tmp_path):
    corrupt = tmp_path / "scan.svs"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(DataError, match=rf"^{corrupt}: unsupported or corrupt slide"):
        open_slide(corrupt)
    fake_png = tmp_path / "fake.png"
    fake_png.write_bytes(b"not a png")
    with pytest.raises(DataError, match=rf"^{fake_png}: unsupported or corrupt slide"):
        open_slide(fake_png)
    with pytest.raises(DataError, match="file not found"):
        open_slide(tmp_path / "absent.svs")


def test_corrupt_tile_in_real_slide(tmp_path):
    source = _wsi(CMU)
    with tifffile.TiffFile(source) as tif:  # the first JPEG tile of level 0
        offset, count = tif.pages[0].dataoffsets[0], tif.pages[0].databytecounts[0]
    data = bytearray(source.read_bytes())
    data[offset : offset + count] = b"\xff" * count
    corrupt = tmp_path / "corrupt.svs"
    corrupt.write_bytes(bytes(data))
    with open_slide(corrupt) as slide:  # the header is fine: the error comes at read time
        with pytest.raises(DataError, match=rf"^{corrupt}: unsupported or corrupt slide: cannot read region"):
            slide.read_region(0, 0, 0, 50, 50)
