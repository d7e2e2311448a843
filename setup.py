"""Thin shim: the metadata lives in setup.cfg. It only maps the top-level ``weights/`` folder
into the package as ``nuclei_tf.weights``, so that a wheel or a non-editable install carries
the shipped model folders."""
from setuptools import find_packages, setup

setup(
    packages=find_packages(exclude=["tests*", "weights*", "benchmarks*", "experiments*", "examples*"]) + ["nuclei_tf.weights"],
    package_dir={"nuclei_tf.weights": "weights"},
)
