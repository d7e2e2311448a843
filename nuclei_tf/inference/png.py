"""A PNG writer fed row blocks as they are produced (8-bit RGB), so that the overlay of a
whole slide never exists in memory at once (PNG specification, ISO/IEC 15948: signature,
IHDR, IDAT chunks of one zlib stream, IEND; every row uses the "Up" filter, type 2)."""
import struct
import zlib

import numpy as np

from nuclei_tf.inference.files import NamedFile, Writer

SIGNATURE = b"\x89PNG\r\n\x1a\n"
UP_FILTER = 2
IDAT_BYTES = 1 << 20


def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


class PngRows(Writer):
    """``with PngRows(path, width, height) as png: png.write(rows)`` for (n, width, 3) uint8 blocks;
    ``name``: the file's name in errors (default ``path``). zlib ``level`` 1: an H&E overlay comes
    out 5% larger than at zlib's default 6 and is compressed in about half the time."""

    def __init__(self, path, width, height, level=1, name=None):
        self.path, self.width, self.height = path, width, height
        self.rows = 0
        self._previous = np.zeros((1, width * 3), np.uint8)
        self._compress = zlib.compressobj(level)
        self._pending = []
        self._file = NamedFile(path, "wb", name=name)  # a full disk's error names the file
        self._file.write(SIGNATURE + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)))

    def write(self, rows):
        rows = np.asarray(rows, dtype=np.uint8)
        if rows.shape[1:] != (self.width, 3):
            raise ValueError(f"{self.path}: expected rows of shape (n, {self.width}, 3), got {rows.shape}")
        if self.rows + len(rows) > self.height:
            raise ValueError(f"{self.path}: more than {self.height} rows written")
        flat = rows.reshape(len(rows), -1)
        filtered = np.empty((len(rows), flat.shape[1] + 1), np.uint8)
        filtered[:, 0] = UP_FILTER
        np.subtract(flat, np.vstack([self._previous, flat[:-1]]), out=filtered[:, 1:])  # wraps mod 256
        self._previous = flat[-1:].copy()
        self._pending.append(self._compress.compress(filtered.tobytes()))
        self.rows += len(rows)
        if sum(map(len, self._pending)) >= IDAT_BYTES:
            self._flush()

    def _flush(self, data=b""):
        data = b"".join(self._pending) + data
        self._pending = []
        if data:
            self._file.write(_chunk(b"IDAT", data))

    def close(self):
        """Finish the file; raises if fewer rows than ``height`` were written."""
        if self._file.closed:
            return
        try:
            if self.rows != self.height:
                raise ValueError(f"{self.path}: {self.rows} of {self.height} rows written")
            self._flush(self._compress.flush())
            self._file.write(_chunk(b"IEND", b""))
        finally:
            self._file.close()

    def abandon(self):
        self._file.abandon()
