"""Inference at bfloat16: the rebuilt model, the hardware check, the folder setting and the CLI option."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from nuclei_tf.cli.main import cli
from nuclei_tf.inference import ModelBundle, load_bundle, save_bundle
from nuclei_tf.inference import precision as precision_module
from nuclei_tf.inference.precision import bfloat16_hardware, cpu_flags, resolve_precision, with_precision
from nuclei_tf.models import build_model


REAL_CPU_FLAGS = precision_module.cpu_flags  # conftest's autouse fixture hides them from every test


@pytest.fixture
def model():
    return build_model("unet_plus", base_filters=4, depth=3)


@pytest.fixture
def no_bf16(monkeypatch):
    """A machine without bfloat16 instructions or a GPU."""
    monkeypatch.setattr(precision_module, "cpu_flags", lambda: {"avx2", "fma"})
    monkeypatch.setattr("tensorflow.config.list_physical_devices", lambda kind=None: [])


def test_cpu_flags_reads_the_flags_line(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16\n")
    assert cpu_flags(info) == {"fpu", "avx512f", "avx512_bf16"}
    assert cpu_flags(tmp_path / "absent") == set()


def test_the_cli_offers_the_same_precisions():
    from nuclei_tf.cli.options import PRECISIONS

    assert PRECISIONS == precision_module.INFERENCE_PRECISIONS


def test_auto_is_bfloat16_only_on_a_cpu_with_the_instructions(model, monkeypatch):
    monkeypatch.setattr("tensorflow.config.list_physical_devices", lambda kind=None: [])
    monkeypatch.setattr(precision_module, "cpu_flags", lambda: {"avx512f", "avx512_bf16"})
    assert resolve_precision("auto") == "bfloat16"
    monkeypatch.setattr(precision_module, "cpu_flags", lambda: {"avx512f"})
    assert resolve_precision("auto") == "float32" and with_precision(model, "auto") is model
    monkeypatch.setattr("tensorflow.config.list_physical_devices", lambda kind=None: ["GPU:0"])
    monkeypatch.setattr(precision_module, "cpu_flags", lambda: {"amx_bf16"})
    assert resolve_precision("auto") == "float32"  # not measured on GPUs
    assert ModelBundle(model).precision == "auto"


def test_float32_is_the_model_itself(model):
    assert with_precision(model, "float32") is model


@pytest.mark.skipif(not bfloat16_hardware(), reason="this machine has no bfloat16 hardware (AVX512-BF16/AMX or GPU)")
def test_bfloat16_computes_in_bfloat16_with_a_float32_head(model, monkeypatch):
    monkeypatch.setattr(precision_module, "cpu_flags", REAL_CPU_FLAGS)
    x = np.random.default_rng(0).random((1, 64, 64, 3), np.float32)
    fast = with_precision(model, "bfloat16")
    assert fast is not model
    compute = {layer.name: layer.dtype_policy.compute_dtype for layer in fast.layers}
    assert compute["probabilities"] == "float32"
    assert sum(dtype == "bfloat16" for dtype in compute.values()) > len(compute) // 2
    out, reference = fast(x).numpy(), model(x).numpy()
    assert out.dtype == np.float32 and np.abs(out - reference).max() < 0.1
    for a, b in zip(fast.get_weights(), model.get_weights()):  # weights stay float32 and equal
        np.testing.assert_array_equal(a, b)


def test_bfloat16_is_refused_without_the_hardware(model, no_bf16):
    with pytest.raises(ValueError, match="AVX512-BF16 or AMX"):
        with_precision(model, "bfloat16")
    with pytest.raises(ValueError, match="precision must be one of"):
        with_precision(model, "float16")


def test_a_model_loaded_at_bfloat16_is_built_once_and_matches_the_rebuilt_one(model, tmp_path, monkeypatch):
    from nuclei_tf.inference.precision import computes_at

    monkeypatch.setattr(precision_module, "cpu_flags", lambda: {"avx512f", "avx512_bf16"})
    folder = save_bundle(ModelBundle(model, tile=32, precision="bfloat16"), tmp_path / "m")
    loaded = load_bundle(folder)
    assert computes_at(loaded.model) == {"mixed_bfloat16"} and with_precision(loaded.model, "bfloat16") is loaded.model
    assert computes_at(load_bundle(folder, precision="float32").model) == {"float32"}
    tiles = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    np.testing.assert_array_equal(loaded.probabilities(tiles), ModelBundle(model, tile=32, precision="bfloat16").probabilities(tiles))
    assert computes_at(load_bundle(save_bundle(loaded, tmp_path / "again")).model) == {"mixed_bfloat16"}
    assert computes_at(load_bundle(tmp_path / "again", precision="float32").model) == {"float32"}  # saved as float32


def test_the_folder_records_its_precision_and_refuses_unknown_ones(model, tmp_path):
    save_bundle(ModelBundle(model, tile=32, precision="bfloat16"), tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["precision"] == "bfloat16"
    with pytest.raises(ValueError, match="AVX512-BF16 or AMX"):  # this (simulated) CPU has neither: refused at load
        load_bundle(tmp_path / "m")
    assert load_bundle(tmp_path / "m", precision="float32").precision == "float32"
    (tmp_path / "m" / "config.json").write_text(json.dumps({**config, "precision": "int8"}))
    with pytest.raises(Exception, match="precision"):
        load_bundle(tmp_path / "m")


def test_cli_refuses_bfloat16_before_any_work(model, tmp_path, no_bf16):
    save_bundle(ModelBundle(model, tile=32), tmp_path / "m")
    image = tmp_path / "img.png"
    from PIL import Image

    Image.fromarray(np.full((40, 40, 3), 200, np.uint8)).save(image)
    result = CliRunner().invoke(cli, ["predict", str(image), "--out", str(tmp_path / "out"), "--model",
                                      str(tmp_path / "m"), "--precision", "bfloat16"])
    assert result.exit_code == 2 and "AVX512-BF16 or AMX" in result.output
    assert not (tmp_path / "out").exists()
