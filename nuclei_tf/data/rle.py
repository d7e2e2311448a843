"""Kaggle run-length encoding (2018 Data Science Bowl) and its per-nucleus CSV files.

A mask is encoded as space-separated ``start length`` pairs: pixels are numbered
1..H*W top to bottom, then left to right (column-major, Fortran order), starts increase
and runs do not overlap (Kaggle DSB 2018, "Evaluation"). The stage-1 CSVs hold one row
per nucleus:

* ``stage1_train_labels.csv``: ``ImageId,EncodedPixels`` (the size is the image's);
* ``stage1_solution.csv``: ``ImageId,EncodedPixels,Height,Width,Usage``.

:func:`read_csv` parses a CSV once (cached by path, size and modification time);
:meth:`RunLengthTable.instances` paints one image's rows as ids 1..N in row order. Every
bad row raises one :class:`~nuclei_tf.data.errors.DataError` naming the CSV and its line
number. Overlaps: the real ``stage1_train_labels.csv`` has 9 pixels claimed by two nuclei
(6 images, 1-2 pixels per pair), so a shared pixel goes to the later row with a warning,
as for mask folders; a row that takes *every* pixel of an earlier nucleus is refused.
"""
import csv
import functools
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from nuclei_tf.data.errors import DataError

_INTEGERS = re.compile(r"\s*(?:-?[0-9]+\s+)*(?:-?[0-9]+)?\s*")
_INTEGER = re.compile(r"-?[0-9]+")


class RunLengthError(ValueError):
    """A malformed run-length string; the CSV reader prefixes the file and line."""


def parse_runs(encoded):
    """(0-based starts, lengths) as int64 arrays of a run-length string, checked for form and order."""
    tokens = encoded.split()
    if len(tokens) % 2:
        raise RunLengthError(f"odd number of tokens ({len(tokens)}); expected 'start length' pairs")
    if not _INTEGERS.fullmatch(encoded):
        bad = next(t for t in tokens if not _INTEGER.fullmatch(t))
        raise RunLengthError(f"token '{bad}' is not an integer")
    try:
        values = np.array(tokens, dtype=np.int64)
    except OverflowError:
        raise RunLengthError("a number does not fit in 64 bits") from None
    starts, lengths = values[0::2], values[1::2]
    for name, column in (("start", starts), ("length", lengths)):
        if column.size and column.min() < 1:
            index = int(np.argmin(column))
            raise RunLengthError(f"{name} {column[index]} of pair {index + 1} is below 1")
    ends = starts + lengths
    backwards = np.flatnonzero(starts[1:] < ends[:-1])
    if backwards.size:
        k = int(backwards[0])
        raise RunLengthError(
            f"runs not increasing: pair {k + 2} starts at {starts[k + 1]}, before pair {k + 1} "
            f"({starts[k]} {lengths[k]}) ends"
        )
    return starts - 1, lengths


def run_pixels(starts, lengths):
    """0-based column-major pixel indices covered by the runs."""
    if not starts.size:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths[:-1])]), lengths)
    return offsets + np.arange(offsets.size)


def _check_inside(starts, lengths, shape):
    n_pixels = shape[0] * shape[1]
    if starts.size and starts[-1] + lengths[-1] > n_pixels:
        raise RunLengthError(
            f"run '{starts[-1] + 1} {lengths[-1]}' ends at pixel {starts[-1] + lengths[-1]}, outside the "
            f"{shape[0]} x {shape[1]} image ({n_pixels} pixels)"
        )


def decode(encoded, shape):
    """Boolean H x W mask of a Kaggle run-length string (raises RunLengthError on bad input)."""
    starts, lengths = parse_runs(encoded)
    _check_inside(starts, lengths, shape)
    flat = np.zeros(shape[0] * shape[1], dtype=bool)
    flat[run_pixels(starts, lengths)] = True
    return flat.reshape(shape, order="F")


def encode(mask):
    """Kaggle run-length string of a 2-D mask (non-zero = inside); '' for an empty mask."""
    flat = np.asarray(mask).astype(bool).ravel(order="F")
    edges = np.flatnonzero(np.diff(np.concatenate([[False], flat, [False]]).astype(np.int8)))
    starts, ends = edges[0::2], edges[1::2]
    return " ".join(f"{s + 1} {e - s}" for s, e in zip(starts, ends))


@dataclass(frozen=True)
class RunLengthRow:
    """One nucleus: its CSV line, 0-based starts and lengths, and (Height, Width) when the CSV gives them."""

    line: int
    starts: np.ndarray = field(repr=False)
    lengths: np.ndarray = field(repr=False)
    size: Optional[tuple] = None


class RunLengthTable:
    """The rows of one run-length CSV, grouped by ImageId in file order."""

    def __init__(self, path, rows):
        self.path = Path(path)
        self.rows = rows

    def error(self, line, problem):
        return DataError(self.path, f"line {line}: {problem}")

    def instances(self, image_id, shape):
        """int32 H x W instance map of ``image_id``: ids 1..N in row order.

        An image with no row warns and is all zero. A pixel claimed by two nuclei goes to
        the later row, as for mask folders, with one warning naming the lines; a row that
        covers every pixel of an earlier nucleus (a duplicate) is an error.
        """
        shape = tuple(shape[:2])
        flat = np.zeros(shape[0] * shape[1], dtype=np.int32)
        if image_id not in self.rows:
            warnings.warn(f"{self.path}: no row for image {image_id}; read as an image with no nucleus")
            return flat.reshape(shape)
        owners, sizes, shared = [], [0], []
        for row in self.rows[image_id]:
            pixels = self._pixels(row, image_id, shape)
            if not pixels.size:
                continue
            lost = np.bincount(flat[pixels], minlength=len(sizes))
            lost[0] = 0
            for index in np.flatnonzero(lost):
                sizes[index] -= int(lost[index])
                shared.append((owners[index - 1].line, row.line, int(lost[index])))
                if sizes[index] == 0:
                    raise self.error(row.line, f"covers every pixel of the nucleus on line {owners[index - 1].line} "
                                               f"of image {image_id} (a duplicate row?)")
            owners.append(row)
            sizes.append(int(pixels.size))
            flat[pixels] = len(owners)
        if shared:
            warnings.warn(self._overlap_message(image_id, shared))
        return flat.reshape(shape, order="F")

    def _pixels(self, row, image_id, shape):
        """0-based column-major pixels of ``row``, checked against the image size."""
        if row.size is not None and row.size != shape:
            raise self.error(row.line, f"Height/Width {row.size[0]} x {row.size[1]} disagree with image "
                                       f"{image_id} of size {shape[0]} x {shape[1]}")
        try:
            _check_inside(row.starts, row.lengths, shape)
        except RunLengthError as exc:
            raise self.error(row.line, str(exc)) from None
        return run_pixels(row.starts, row.lengths)

    def _overlap_message(self, image_id, shared):
        pairs = ", ".join(f"lines {a}/{b}: {n}" for a, b, n in shared)
        total = sum(n for _, _, n in shared)
        return (f"{self.path}: image {image_id}: {total} pixel(s) claimed by two nuclei ({pairs}); "
                f"each goes to the later line")


def _size(record, table, line):
    if "Height" not in record and "Width" not in record:
        return None
    values = (record.get("Height"), record.get("Width"))
    if not all(v is not None and _INTEGER.fullmatch(v.strip()) for v in values):
        raise table.error(line, f"Height/Width {values[0]!r}, {values[1]!r} are not integers")
    return int(values[0]), int(values[1])


def _parse(path):
    table = RunLengthTable(path, {})
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = {"ImageId", "EncodedPixels"} - set(reader.fieldnames or ())
        if missing:
            raise table.error(1, f"header lacks {', '.join(sorted(missing))}; "
                                 f"expected ImageId,EncodedPixels[,Height,Width,Usage]")
        for record in reader:
            line = reader.line_num
            if None in record.values() or None in record:
                raise table.error(line, f"expected {len(reader.fieldnames)} fields ({','.join(reader.fieldnames)})")
            image_id = record["ImageId"].strip()
            if not image_id:
                raise table.error(line, "empty ImageId")
            size = _size(record, table, line)
            try:
                starts, lengths = parse_runs(record["EncodedPixels"])
            except RunLengthError as exc:
                raise table.error(line, f"{exc} (ImageId {image_id})") from None
            table.rows.setdefault(image_id, []).append(RunLengthRow(line, starts, lengths, size))
    return table


@functools.lru_cache(maxsize=8)
def _parse_cached(path, size, mtime_ns):
    """``size`` and ``mtime_ns`` only key the cache: a rewritten file is parsed again."""
    try:
        return _parse(path)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(path, f"cannot be read as a UTF-8 CSV ({exc})") from None


def read_csv(path):
    """The :class:`RunLengthTable` of a DSB run-length CSV, parsed once per file version."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    stat = path.stat()
    return _parse_cached(path.resolve(), stat.st_size, stat.st_mtime_ns)
