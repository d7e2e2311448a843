"""Finished strips of a whole-slide run, recorded next to its outputs so that a run killed after
strip N continues, with the same command, at strip N + 1.

``<out>/<stem>.parts/`` holds ``run.json`` (what the run computes: slide, model, resolution,
region; another command's parts are refused, never mixed in), one ``strip-NNNNNN.npz`` per
strip (its final label rows and the label band still open below them) and ``progress.json``
(strips done, the :func:`~nuclei_tf.postprocess.strips.instance_strips` resume state, nuclei
so far and the byte lengths of the streamed CSV and GeoJSON). ``progress.json`` is replaced
atomically after everything else of a strip is on disk: what it names is complete.
"""
import json
import os
import shutil
from pathlib import Path

import numpy as np

from nuclei_tf.data.errors import DataError


def _atomic_json(path, value):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=1))
    os.replace(tmp, path)


class StripParts:
    """The ``<stem>.parts`` folder of one run described by ``fingerprint`` (a JSON-able dict)."""

    def __init__(self, folder, fingerprint):
        self.folder = Path(folder)
        self.progress_path = self.folder / "progress.json"
        run = self.folder / "run.json"
        self.progress = json.loads(self.progress_path.read_text()) if self.progress_path.is_file() else None
        if run.is_file() and self.progress:
            recorded = json.loads(run.read_text())
            if recorded != fingerprint:
                changed = sorted(k for k in set(recorded) | set(fingerprint) if recorded.get(k) != fingerprint.get(k))
                raise DataError(self.folder, f"holds the finished strips of a run with other settings ({', '.join(changed)}); "
                                             "run the same command again to continue it, or delete this folder to start over")
        else:  # a new run (or one that finished no strip)
            self.folder.mkdir(parents=True, exist_ok=True)
            _atomic_json(run, fingerprint)

    @property
    def strips(self):
        """Strips finished so far."""
        return self.progress["strips"] if self.progress else 0

    def band(self):
        """``(top, band)``: the open label band after the last finished strip (empty at the start)."""
        if not self.strips:
            return 0, None
        with np.load(self._strip_path(self.strips - 1)) as saved:
            return int(saved["band_top"]), saved["band"]

    def _strip_path(self, index):
        return self.folder / f"strip-{index:06d}.npz"

    def save(self, top, rows, band_top, band, progress):
        """Record one more finished strip: its final label ``rows`` from row ``top``, the open
        ``band`` from ``band_top`` and the ``progress`` dict (without the strip count)."""
        index = self.strips
        path = self._strip_path(index)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(tmp, top=top, rows=rows, band_top=band_top, band=band)
        os.replace(tmp, path)
        self.progress = {**progress, "strips": index + 1}
        _atomic_json(self.progress_path, self.progress)

    def final_rows(self):
        """Yield ``(top, rows)`` of every finished strip's final label rows, in order."""
        for index in range(self.strips):
            with np.load(self._strip_path(index)) as saved:
                yield int(saved["top"]), saved["rows"]

    def remove(self):
        shutil.rmtree(self.folder, ignore_errors=True)
