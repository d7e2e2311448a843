"""Bad input and faults across the commands give one line naming the file or value (issues 15, 34)."""
import errno

import numpy as np
import pytest
import tifffile
import yaml
from click.testing import CliRunner
from PIL import Image

from nuclei_tf.cli.main import cli
from nuclei_tf.train.config import load_config


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def one_line_error(result, *expected):
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    for text in expected:
        assert text in result.output, result.output


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "a.png"
    Image.fromarray(np.full((40, 40, 3), 120, np.uint8)).save(path)
    return path


@pytest.mark.parametrize("shape", [(1, 2000), (2000, 1), (15, 400)])
def test_images_smaller_than_a_nucleus_are_refused_before_any_work(tmp_path, shape):
    Image.fromarray(np.full((*shape, 3), 120, np.uint8)).save(tmp_path / "thin.png")
    result = invoke("predict", tmp_path / "thin.png", "--out", tmp_path / "out")
    one_line_error(result, "thin.png: is", "at least 16 px")
    assert not any((tmp_path / "out").iterdir())


def test_an_unwritable_output_folder_is_refused_before_any_work(tmp_path, image):
    (tmp_path / "file").write_text("not a folder")
    one_line_error(invoke("predict", image, "--out", tmp_path / "file" / "out"), "file")


def test_a_full_disk_gives_one_line_and_no_partial_file(tmp_path, image, monkeypatch):
    import nuclei_tf.inference.outputs as outputs

    def full(self, rows):
        raise OSError(errno.ENOSPC, "No space left on device", str(self.path))

    monkeypatch.setattr(outputs.PngRows, "write", full)
    result = invoke("predict", image, "--out", tmp_path / "out")
    one_line_error(result, "No space left on device", "the disk is full")
    assert list((tmp_path / "out").iterdir()) == []


def test_unreadable_inputs_are_found_before_the_model_runs(tmp_path, image, monkeypatch):
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    import nuclei_tf.inference.bundle as bundle

    monkeypatch.setattr(bundle, "load_at_precision", lambda *args: pytest.fail("the model must not be loaded"))
    one_line_error(invoke("predict", image, tmp_path / "bad.png", "--out", tmp_path / "out"), "bad.png: ")
    assert not list((tmp_path / "out").glob("a.*"))


@pytest.mark.parametrize("text, expected", [("arch: [unclosed\n", "not a valid YAML"), ("- a\n- b\n", "got list"),
                                            ("[]\n", "got list"), ("\"\"\n", "got str"), ("{}\n[]\n", "not a valid YAML")])
def test_a_config_that_is_not_a_yaml_mapping_is_named(tmp_path, text, expected):
    (tmp_path / "exp.yaml").write_text(text)
    one_line_error(invoke("fit", "--config", tmp_path / "exp.yaml", "--out", tmp_path / "run"), "exp.yaml: ", expected)


def test_resume_without_a_checkpoint_is_one_line(tmp_path, synthetic_monuseg, synthetic_tnbc):
    run = tmp_path / "run"
    run.mkdir()
    config = load_config(None, {"arch": "unet_plus", "model": {"base_filters": 4, "depth": 3},
                                "data": {"tile": 32, "batch_size": 2}, "train": {"epochs": 1}})
    (run / "config.yaml").write_text(yaml.safe_dump(config))  # a run folder whose training never checkpointed
    result = invoke("fit", "--out", run, "--resume", "--monuseg", synthetic_monuseg, "--tnbc", synthetic_tnbc)
    one_line_error(result, "--resume: no checkpoint in")


def test_an_image_too_large_for_memory_is_not_called_corrupt(tmp_path, image, monkeypatch):
    from PIL import ImageFile

    from nuclei_tf.data.io import read_image

    def exhausted(self):
        raise MemoryError

    monkeypatch.setattr(ImageFile.ImageFile, "load", exhausted)
    with pytest.raises(ValueError, match="a.png: is too large to decode in memory"):
        read_image(image)


def test_bad_arch_options_and_metric_are_refused_before_any_data_is_read(tmp_path, monkeypatch):
    import nuclei_tf.data.protocols as protocols

    monkeypatch.setattr(protocols, "split_protocol", lambda *a, **k: pytest.fail("no data may be read"))
    (tmp_path / "exp.yaml").write_text("arch: unet_plus\nmodel: {base_filter: 8}\n")
    one_line_error(invoke("fit", "--config", tmp_path / "exp.yaml", "--out", tmp_path / "run"),
                   "exp.yaml: unknown model option(s) base_filter", "valid: base_filters")
    one_line_error(invoke("fit", "--arch", "unet3", "--out", tmp_path / "run"), "unknown arch 'unet3'")
    (tmp_path / "m.keras").write_bytes(b"")
    one_line_error(invoke("calibrate", tmp_path / "m.keras", "--metric", "ajj", "--out", tmp_path / "folder"),
                   "unknown metric 'ajj'", "aji")
    assert not (tmp_path / "run").exists() and not (tmp_path / "folder").exists()


def test_a_missing_or_empty_model_folder_is_one_line(tmp_path, image):
    (tmp_path / "empty").mkdir()
    one_line_error(invoke("predict", image, "--model", tmp_path / "empty", "--out", tmp_path / "out"),
                   "empty/model.keras: model file not found")
    one_line_error(invoke("export", tmp_path / "empty", "--out", tmp_path / "serving"), "model file not found")


def test_evaluate_checks_its_output_folder_before_reading_data(tmp_path, monkeypatch):
    import nuclei_tf.cli.evaluate as evaluate_cli

    monkeypatch.setattr(evaluate_cli, "split_protocol", lambda *a, **k: pytest.fail("no data may be read"))
    (tmp_path / "file").write_text("")
    one_line_error(invoke("baseline", "--method", "otsu", "--out", tmp_path / "file" / "report"), "file")


def test_predict_batch_size_below_one_is_an_option_error(tmp_path, image):
    result = invoke("predict", image, "--batch-size", "0", "--out", tmp_path / "out")
    assert result.exit_code == 2 and "--batch-size" in result.output and "a.png" not in result.output


def test_shipped_models_are_selectable_by_name(tmp_path, image):
    from nuclei_tf.inference.shipped import shipped_models

    assert "unet_plus_b16" in shipped_models()
    result = invoke("predict", image, "--model", "unet_plus_b16", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    one_line_error(invoke("predict", image, "--model", "unet_plus_b17", "--out", tmp_path / "out"),
                   "unet_plus_b17: no such model folder", "unet_plus_b16")


# ---- round 2 (issue 34): colour depths, channels, orientation, output names, export, full disk ----

def rgb_tiff(path, pixels, **options):
    tifffile.imwrite(path, pixels, photometric="rgb", **options)
    return path


def test_12_bit_data_in_a_16_bit_tiff_is_scaled_by_its_recorded_depth_or_refused(tmp_path):
    from nuclei_tf.data.io import read_image

    rgb = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    twelve = np.round(rgb * (4095 / 255)).astype(np.uint16)
    recorded = rgb_tiff(tmp_path / "max.tif", twelve, extratags=[(281, "H", 3, (4095,) * 3, True)])  # MaxSampleValue
    assert np.array_equal(read_image(recorded), rgb)
    packed = rgb_tiff(tmp_path / "bits.tif", twelve, bitspersample=12)  # BitsPerSample 12, unpacked into uint16
    assert np.array_equal(read_image(packed), rgb)
    full = rgb_tiff(tmp_path / "full.tif", rgb.astype(np.uint16) * 257)  # genuine 16-bit: x / 257 as before
    assert np.array_equal(read_image(full), rgb)
    unrecorded = rgb_tiff(tmp_path / "twelve.tif", twelve)
    with pytest.raises(ValueError, match="twelve.tif: 16-bit pixels reach only 4095 of 65535 .about 12-bit data. and the "
                                         "bit depth is not recorded"):
        read_image(unrecorded)
    one_line_error(invoke("predict", unrecorded, "--out", tmp_path / "out"), "twelve.tif: 16-bit pixels reach only 4095",
                   "nearly black")
    over = rgb_tiff(tmp_path / "over.tif", twelve + 1, extratags=[(281, "H", 3, (4000,) * 3, True)])
    with pytest.raises(ValueError, match="over.tif: pixel values reach 4096, above the recorded full scale 4000"):
        read_image(over)


def test_16_bit_colour_pngs_are_read_at_16_bits(tmp_path):
    """Pillow keeps only the high byte of 16-bit RGB: a 12-bit PNG came out nearly black."""
    import cv2

    from nuclei_tf.data.io import read_image

    rgb = np.random.default_rng(1).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "full.png"), (rgb.astype(np.uint16) * 257)[..., ::-1])
    assert np.array_equal(read_image(tmp_path / "full.png"), rgb)
    cv2.imwrite(str(tmp_path / "twelve.png"), np.round(rgb * (4095 / 255)).astype(np.uint16)[..., ::-1])
    with pytest.raises(ValueError, match="twelve.png: 16-bit pixels reach only 4095"):
        read_image(tmp_path / "twelve.png")


def test_only_grey_grey_alpha_rgb_and_rgba_tiffs_are_read(tmp_path):
    from nuclei_tf.data.io import read_image

    grey = np.random.default_rng(2).integers(0, 256, (20, 30), dtype=np.uint8)
    alpha = np.where(np.arange(30) < 15, 255, 0).astype(np.uint8)[None].repeat(20, 0)
    two = tmp_path / "two.tif"
    tifffile.imwrite(two, np.dstack([grey, alpha]), photometric="minisblack", planarconfig="contig")
    with pytest.raises(ValueError, match="two.tif: grey TIFF with 2 samples per pixel and ExtraSamples UNSPECIFIED"):
        read_image(two)
    one_line_error(invoke("predict", two, "--out", tmp_path / "out"), "two.tif: grey TIFF with 2 samples")
    tagged = tmp_path / "grey_alpha.tif"
    tifffile.imwrite(tagged, np.dstack([grey, alpha]), photometric="minisblack", planarconfig="contig",
                     extrasamples=["unassalpha"])
    shown = read_image(tagged)
    assert np.array_equal(shown[:, :15, 0], grey[:, :15]) and (shown[:, 15:] == 255).all()
    rgb = np.random.default_rng(3).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    untagged = rgb_tiff(tmp_path / "four.tif", np.dstack([rgb, alpha]), extrasamples=["unspecified"])
    with pytest.raises(ValueError, match="four.tif: RGB TIFF with 4 samples per pixel and ExtraSamples UNSPECIFIED"):
        read_image(untagged)
    # associated (premultiplied) alpha: colour c a / 255 over white is c a / 255 + 255 - a
    half = np.full((20, 30), 128, np.uint8)
    premultiplied = np.round(rgb * (128 / 255)).astype(np.uint8)
    associated = rgb_tiff(tmp_path / "assoc.tif", np.dstack([premultiplied, half]), extrasamples=["assocalpha"])
    straight = rgb_tiff(tmp_path / "unassoc.tif", np.dstack([rgb, half]), extrasamples=["unassalpha"])
    assert np.abs(read_image(associated).astype(int) - read_image(straight)).max() <= 1
    assert np.array_equal(read_image(associated), premultiplied + 127)


def test_exif_and_tiff_orientation_are_applied_as_viewers_do(tmp_path, image):
    from PIL import ImageOps

    from nuclei_tf.data.io import image_shape, read_image, read_label
    from nuclei_tf.data.slide import open_slide

    stored = np.random.default_rng(4).integers(0, 256, (30, 20, 3), dtype=np.uint8)
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        Image.fromarray(stored).save(tmp_path / f"o{orientation}.png", exif=exif)
        expected = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / f"o{orientation}.png")))
        assert np.array_equal(read_image(tmp_path / f"o{orientation}.png"), expected), orientation
        assert image_shape(tmp_path / f"o{orientation}.png") == expected.shape[:2]
        rgb_tiff(tmp_path / f"o{orientation}.tif", stored, extratags=[(274, "H", 1, orientation, True)])
        assert np.array_equal(read_image(tmp_path / f"o{orientation}.tif"), expected), orientation
        with open_slide(tmp_path / f"o{orientation}.tif") as slide:
            assert slide.dimensions == expected.shape[1::-1]
        tifffile.imwrite(tmp_path / f"l{orientation}.tif", stored[..., 0].astype(np.int32),
                         extratags=[(274, "H", 1, orientation, True)])
        assert np.array_equal(read_label(tmp_path / f"l{orientation}.tif"), expected[..., 0])  # labels stay aligned
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.full((200, 300, 3), 200, np.uint8)).save(tmp_path / "scan.jpg", exif=exif)
    result = invoke("predict", tmp_path / "scan.jpg", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert tifffile.imread(tmp_path / "out" / "scan.labels.tif").shape == (300, 200)  # as the viewer shows it
    assert Image.open(tmp_path / "out" / "scan.overlay.png").size == (200, 300)
    exif[0x0112] = 9
    Image.fromarray(stored).save(tmp_path / "bad.png", exif=exif)
    with pytest.raises(ValueError, match="bad.png: Orientation tag 9 is not one of 1-8"):
        read_image(tmp_path / "bad.png")


@pytest.mark.parametrize("margin", [0, 32])
@pytest.mark.parametrize("shape", [(40, 40), (40, 70), (19, 33)])
def test_tta_on_images_smaller_than_a_tile_keeps_the_single_pass_geometry(shape, margin):
    """With a model that is exactly equivariant (per pixel), the mean of the 8 views of a padded
    small image is the single pass, in both tiling schemes: no view lands shifted or turned."""
    import keras

    from nuclei_tf.inference import ModelBundle
    from nuclei_tf.inference.predict import predict_probability

    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(1, 1, activation="sigmoid")(inputs))
    image = np.random.default_rng(5).integers(0, 256, (*shape, 3), dtype=np.uint8)
    single = ModelBundle(model, tile=128, overlap=0.5, margin=margin, precision="float32")
    views = ModelBundle(model, tile=128, overlap=0.5, margin=margin, precision="float32", tta=True)
    np.testing.assert_allclose(predict_probability(views, image).astype(np.float32),
                               predict_probability(single, image).astype(np.float32), atol=1e-3)


def test_an_output_name_that_is_a_folder_is_refused_before_any_work(tmp_path, image, monkeypatch):
    import nuclei_tf.inference.bundle as bundle

    (tmp_path / "out" / "a.csv").mkdir(parents=True)
    monkeypatch.setattr(bundle, "load_at_precision", lambda *args: pytest.fail("the model must not be loaded"))
    one_line_error(invoke("predict", image, "--out", tmp_path / "out"), "out/a.csv: exists and is not a file")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.csv"]


def test_an_output_folder_met_while_writing_leaves_no_partial(tmp_path, image):
    from nuclei_tf.data.errors import DataError
    from nuclei_tf.inference.outputs import write_outputs

    (tmp_path / "a.geojson.partial").mkdir()
    with pytest.raises(DataError, match="a.geojson.partial: exists and is not a file"):
        write_outputs(np.zeros((20, 20, 3), np.uint8), np.zeros((20, 20), np.int32), tmp_path, "a")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.geojson.partial", "a.png"]


@pytest.fixture
def immutable():
    """``immutable(folder)``: create a folder even root cannot write into (chattr +i); made
    writable again when the test ends."""
    import subprocess

    made = []

    def make(folder):
        folder.mkdir(parents=True)
        if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
            pytest.skip("chattr +i is not available here (needs CAP_LINUX_IMMUTABLE and ext4/xfs)")
        made.append(folder)
        return folder

    yield make
    for folder in made:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def error_lines(result):
    """The output lines other than the device line every TensorFlow command prints first."""
    return [line for line in result.output.splitlines() if not line.startswith("TensorFlow ")]


def test_export_into_an_immutable_or_read_only_folder_is_one_line(tmp_path, immutable):
    folder = immutable(tmp_path / "immutable")
    result = invoke("export", "unet_plus_b16", "--out", folder)
    one_line_error(result, f"{folder}: Operation not permitted", "choose another --out")
    assert len(error_lines(result)) == 1
    one_line_error(invoke("export", "unet_plus_b16", "--out", folder / "serving"), "immutable/serving: ")


def test_a_tensorflow_write_error_in_export_is_one_line(tmp_path, immutable):
    """The version is written beside the others as .1.partial: TensorFlow's own file system
    raises there (PermissionDeniedError), after the folder itself was found writable."""
    immutable(tmp_path / "serving" / ".1.partial")
    result = invoke("export", "unet_plus_b16", "--out", tmp_path / "serving")
    one_line_error(result, "serving: cannot write the SavedModel: ", ".1.partial", "Operation not permitted")
    assert len(error_lines(result)) == 1 and not (tmp_path / "serving" / "1").exists()


@pytest.mark.parametrize("output", ["csv", "geojson", "overlay.png"])
def test_a_full_disk_names_the_output_being_written(tmp_path, image, monkeypatch, output):
    """/dev/full fails every write with the kernel's ENOSPC, which carries no file name."""
    import builtins

    import nuclei_tf.inference.files as files

    def into_full_disk(path, mode="r", **options):
        return builtins.open("/dev/full" if str(path).endswith(f".{output}.partial") else path, mode, **options)

    monkeypatch.setattr(files, "open", into_full_disk, raising=False)
    result = invoke("predict", image, "--out", tmp_path / "out")
    one_line_error(result, f"out/a.{output}: No space left on device; the disk is full")
    assert list((tmp_path / "out").iterdir()) == []


def test_a_full_disk_under_the_tiff_writer_names_the_labels_file(tmp_path, image, monkeypatch):
    import nuclei_tf.inference.outputs as outputs

    def full(path, data, **options):
        next(iter(data))  # the rows flow (csv, geojson and overlay are written), then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(outputs.tifffile, "imwrite", full)
    one_line_error(invoke("predict", image, "--out", tmp_path / "out"), "out/a.labels.tif: No space left on device")
    assert list((tmp_path / "out").iterdir()) == []
