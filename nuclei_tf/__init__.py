"""nuclei-tf: H&E nuclei segmentation (U-Net, U-Net+, UNet++, encoder U-Nets, GB U-Net) in TensorFlow 2 / Keras 3."""
import os

# albumentations checks PyPI for a newer version at import time; this package must work offline.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

__version__ = "0.1.0"
