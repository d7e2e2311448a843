"""The `nuclei-tf` command line through click's runner and, once, as an installed console script."""
import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from nuclei_tf import __version__
from nuclei_tf.cli.main import COMMANDS, cli


def test_help_lists_every_command_without_importing_them():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert name in result.output


def test_version_names_the_package_and_the_device():
    version, device = CliRunner().invoke(cli, ["--version"]).output.strip().splitlines()
    assert version == f"nuclei-tf, version {__version__}" and device.startswith("TensorFlow 2.21.0 on ")


def test_console_script_is_installed():
    out = subprocess.run([sys.executable, "-m", "nuclei_tf", "--version"], capture_output=True, text=True, check=True)
    assert __version__ in out.stdout


def test_data_summary_json(synthetic_monuseg, synthetic_tnbc):
    result = CliRunner().invoke(
        cli, ["data", "summary", "--monuseg", str(synthetic_monuseg), "--tnbc", str(synthetic_tnbc), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["protocol"] == "lagree2021"
    assert report["splits"]["tnbc"] == {"images": 4, "nuclei": 8, "organs": {"breast": 4}}
    assert report["splits"]["monuseg-breast"]["nuclei"] == 3
    assert set(report["splits"]) == {"train", "val", "monuseg-breast", "tnbc"}


def test_data_summary_table_and_errors(synthetic_monuseg, synthetic_tnbc):
    ok = CliRunner().invoke(cli, ["data", "summary", "--monuseg", str(synthetic_monuseg), "--tnbc", str(synthetic_tnbc)])
    assert ok.exit_code == 0 and "monuseg-breast" in ok.output
    missing = CliRunner().invoke(cli, ["data", "summary", "--monuseg", str(synthetic_monuseg)])
    assert missing.exit_code == 1 and "needs the tnbc folder" in missing.output and "Traceback" not in missing.output


def test_tensorflow_start_up_lines_are_replaced_by_one_device_line(tmp_path):
    quiet = subprocess.run([sys.executable, "-m", "nuclei_tf", "demo", "--out", str(tmp_path)], capture_output=True, text=True)
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert "TensorFlow " in quiet.stderr and " on " in quiet.stderr
    assert not any(line.startswith(("I0000", "E0000", "W0000", "WARNING: All log")) for line in quiet.stderr.splitlines()), quiet.stderr


def test_models_without_params_does_not_load_tensorflow():
    script = ("import sys; from click.testing import CliRunner; from nuclei_tf.cli.main import cli; "
              "r = CliRunner().invoke(cli, ['models', '--no-params']); "
              "print(r.exit_code, 'unet_plus' in r.output, 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.stdout.split() == ["0", "True", "False"], out.stderr[-2000:]


def test_the_stored_catalog_matches_the_registry():
    from nuclei_tf.cli.models import CATALOG, describe

    assert json.loads(CATALOG.read_text()) == describe(count=False), \
        "the model registry changed: run `python -m nuclei_tf.cli.models` to rewrite nuclei_tf/models/catalog.json"


def test_the_allocator_is_tuned_on_linux_glibc():
    import platform

    from nuclei_tf.cli.allocator import tune_allocator

    expected = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert tune_allocator() is expected


def test_keras_backend_is_the_environment_then_keras_json_then_tensorflow(tmp_path, monkeypatch):
    from nuclei_tf.cli.tensorflow_setup import keras_backend

    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert keras_backend() == "tensorflow"
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "jax", "floatx": "float32"}))
    assert keras_backend() == "jax"
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    assert keras_backend() == "torch"


def test_jax_is_hidden_only_inside_and_only_under_the_tensorflow_backend(monkeypatch):
    import importlib

    from nuclei_tf.cli.tensorflow_setup import jax_hidden

    monkeypatch.delitem(sys.modules, "jax", raising=False)
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    with jax_hidden():
        assert sys.modules["jax"] is None
        try:
            importlib.import_module("jax")
        except ImportError:
            pass
        else:
            raise AssertionError("import jax succeeded inside jax_hidden()")
    assert "jax" not in sys.modules
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    with jax_hidden():
        assert "jax" not in sys.modules


def test_starting_tensorflow_does_not_import_jax():
    code = ("import sys; from nuclei_tf.cli.tensorflow_setup import start_tensorflow; "
            "print(start_tensorflow()); print('jax' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "KERAS_BACKEND": "tensorflow"})
    device, jax_imported = out.stdout.splitlines()
    assert device.startswith("TensorFlow ") and jax_imported == "False"


@pytest.mark.parametrize("args, code, expected", [(["--version"], 0, "nuclei-tf, version"),
                                                  (["predict", "--bogus"], 2, "No such option '--bogus'"),
                                                  (["export", "missing_model", "--out", "x"], 1, "missing_model: no such model")])
def test_the_console_entry_ends_the_process_with_the_command_s_exit_code_and_output(args, code, expected, tmp_path):
    """main() skips Python's finalisation (TensorFlow's teardown) after flushing: nothing printed is lost."""
    out = subprocess.run([sys.executable, "-c", "from nuclei_tf.cli.main import main; main()", *args], cwd=tmp_path,
                         capture_output=True, text=True)
    assert out.returncode == code and expected in out.stdout + out.stderr, out.stdout + out.stderr
