"""The install traps of DEVELOPERS.md stay solved by the package metadata."""
import os

from nuclei_tf.check_install import run_checks


def test_install_checks_pass():
    failed = [(name, detail) for name, ok, detail in run_checks() if not ok]
    assert not failed


def test_albumentations_update_check_is_disabled():
    assert os.environ["NO_ALBUMENTATIONS_UPDATE"] == "1"


def test_a_wheel_carries_the_shipped_model_and_sample(tmp_path):
    import shutil
    import subprocess
    import sys
    import zipfile
    from pathlib import Path

    import pytest

    root = Path(__file__).resolve().parents[1]
    listed = subprocess.run(["git", "ls-files"], cwd=root, capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout: the tracked files are what a wheel is built from")
    source = tmp_path / "source"  # a copy, so that the build leaves no build/ folder in the checkout
    for name in listed.stdout.splitlines():
        if (root / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / name, source / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path),
                            str(source)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-2000:]
    names = zipfile.ZipFile(next(tmp_path.glob("nuclei_tf-*.whl"))).namelist()
    assert {"nuclei_tf/weights/unet_plus_b16/model.keras", "nuclei_tf/weights/unet_plus_b16/config.json",
            "nuclei_tf/data/sample/breast_sample.png"} <= set(names)
    assert not any(name.startswith(("weights/", "tests/", "benchmarks/")) for name in names)


def test_the_gpu_extra_pins_the_tensorflow_the_package_requires():
    """``pip install -e ".[gpu]"``: TensorFlow with its CUDA wheels, at the version installed without it."""
    import configparser
    from pathlib import Path

    setup = configparser.ConfigParser()
    setup.read(Path(__file__).resolve().parents[1] / "setup.cfg")
    pinned = next(line for line in setup["options"]["install_requires"].split("\n") if line.startswith("tensorflow=="))
    assert setup["options.extras_require"]["gpu"].strip() == f'{pinned.replace("tensorflow", "tensorflow[and-cuda]")}; sys_platform == "linux"'
