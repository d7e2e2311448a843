"""The cohort's tables, rewritten atomically each time a slide finishes (a crash leaves readable
ones): ``cohort.csv`` (and ``cohort.parquet`` where ``pyarrow`` is installed), one row per slide
(:data:`~nuclei_tf.cohort.summary.COHORT_COLUMNS`), ``failures.csv`` (id, path, error, worker) and,
at the end, ``cohort.png``: nuclei density and median nucleus area per slide."""
import csv
import os
from pathlib import Path

from nuclei_tf.cohort.summary import COHORT_COLUMNS

FAILURE_COLUMNS = ("id", "path", "error", "worker")


def _atomic_csv(path, columns, rows):
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


class CohortTables:
    """The rows of a cohort's slides, kept in the order the slides were given."""

    def __init__(self, out_dir, order):
        self.out_dir = Path(out_dir)
        self.order = {slide_id: i for i, slide_id in enumerate(order)}
        self.rows = {}

    def add(self, row):
        self.rows[row["id"]] = row
        rows = sorted(self.rows.values(), key=lambda r: self.order[r["id"]])
        _atomic_csv(self.out_dir / "cohort.csv", COHORT_COLUMNS, rows)
        _atomic_csv(self.out_dir / "failures.csv", FAILURE_COLUMNS, [r for r in rows if r["status"] != "ok"])
        self._parquet(rows)

    def _parquet(self, rows):
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            return
        tmp = self.out_dir / "cohort.parquet.tmp"
        pq.write_table(pa.Table.from_pylist([{c: r.get(c) for c in COHORT_COLUMNS} for r in rows]), tmp)
        os.replace(tmp, self.out_dir / "cohort.parquet")

    @property
    def failed(self):
        return [r for r in self.rows.values() if r["status"] != "ok"]

    def plot(self):
        """``cohort.png``: nuclei per mm^2 of tissue and median nucleus area, one bar per slide."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        rows = sorted((r for r in self.rows.values() if r["status"] == "ok"), key=lambda r: self.order[r["id"]])
        figure, axes = plt.subplots(2, 1, figsize=(max(6, 0.25 * len(rows) + 2), 6), sharex=True)
        names = [r["id"] for r in rows]
        for axis, column, label in ((axes[0], "nuclei_per_mm2", "nuclei per mm$^2$ of tissue"),
                                    (axes[1], "area_um2_median", "median nucleus area ($\\mu$m$^2$)")):
            axis.bar(range(len(rows)), [r.get(column) or 0 for r in rows], color="#5b4a8b")
            axis.set_ylabel(label)
        axes[1].set_xticks(range(len(rows)), names, rotation=90, fontsize=7)
        axes[0].set_title(f"{len(rows)} slides")
        figure.tight_layout()
        tmp = self.out_dir / "cohort.tmp.png"
        figure.savefig(tmp, dpi=100)
        plt.close(figure)
        os.replace(tmp, self.out_dir / "cohort.png")
