"""`python -m nuclei_tf.check_install`: verify the install traps are solved on this machine.

Checks that ``cv2`` is a headless build (no GUI backend, so no libGL needed), that LZW
TIFFs decode (imagecodecs), that ``spams`` (from spams-bin) and staintools import, and
prints the versions of the numerical stack. Exits non-zero on the first failed check.
"""
import importlib
import sys


def cv2_gui_backend():
    """The GUI backend line of OpenCV's build information ('NONE' for headless builds)."""
    import cv2

    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GUI:"):
            return line.split(":", 1)[1].strip()
    return "NONE"


def lzw_roundtrip():
    """Write and read back an LZW-compressed TIFF (the MoNuSeg format) in memory."""
    import io

    import numpy as np
    import tifffile

    data = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, data, compression="lzw")
    buffer.seek(0)
    return bool((tifffile.imread(buffer) == data).all())


def run_checks():
    """Return a list of (name, ok, detail) for every install check."""
    results = []
    gui = cv2_gui_backend()
    results.append(("cv2 is headless", gui == "NONE", f"GUI backend: {gui}"))
    results.append(("LZW TIFF decoding (imagecodecs)", lzw_roundtrip(), ""))
    for module in ("spams", "staintools", "albumentations", "skimage", "tensorflow", "keras"):
        try:
            version = getattr(importlib.import_module(module), "__version__", "?")
            results.append((f"import {module}", True, version))
        except Exception as exc:  # report every failing import, not just the first
            results.append((f"import {module}", False, repr(exc)))
    return results


def main():
    results = run_checks()
    for name, ok, detail in results:
        print(f"{'ok  ' if ok else 'FAIL'} {name} {detail}")
    return 0 if all(ok for _, ok, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
