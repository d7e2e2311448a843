"""The install traps of DEVELOPERS.md stay solved by the package metadata."""
import os

from nuclei_tf.check_install import run_checks


def test_install_checks_pass():
    failed = [(name, detail) for name, ok, detail in run_checks() if not ok]
    assert not failed


def test_albumentations_update_check_is_disabled():
    assert os.environ["NO_ALBUMENTATIONS_UPDATE"] == "1"
