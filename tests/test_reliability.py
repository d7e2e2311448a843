"""Bad input and faults across the commands give one line naming the file or value (issue 15)."""
import errno

import numpy as np
import pytest
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

    monkeypatch.setattr(bundle, "load_model", lambda path: pytest.fail("the model must not be loaded"))
    one_line_error(invoke("predict", image, tmp_path / "bad.png", "--out", tmp_path / "out"), "bad.png: ")
    assert not list((tmp_path / "out").glob("a.*"))


@pytest.mark.parametrize("text, expected", [("arch: [unclosed\n", "not a valid YAML"), ("- a\n- b\n", "got list")])
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
    from nuclei_tf.inference.bundle import shipped_models

    assert "unet_plus_b16" in shipped_models()
    result = invoke("predict", image, "--model", "unet_plus_b16", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    one_line_error(invoke("predict", image, "--model", "unet_plus_b17", "--out", tmp_path / "out"),
                   "unet_plus_b17: no such model folder", "unet_plus_b16")
