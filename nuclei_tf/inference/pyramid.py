"""Instance labels of a whole slide as a tiled, pyramidal (OME-)TIFF, written from a stream of rows.

The file has the layout of a pyramidal OME-TIFF: the first IFD is level 0 (full resolution,
int32, tiled, compressed) and the smaller levels are its SubIFDs, each 2x smaller than the one
above. QuPath (Bio-Formats) opens it as one pyramidal image, napari/tifffile as
``TiffFile(path).series[0].levels``.

Sub-levels are nearest-neighbour reductions (``labels[::2**k, ::2**k]``), so every pixel of
every level is a real nucleus id (a mean of ids would be meaningless).

See :func:`write_label_pyramid` for the design and its memory and disk use.
"""
import math
import os
import tempfile
import zlib
from array import array
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import tifffile

from nuclei_tf.inference.files import partial_path

LABEL_DTYPE = np.dtype("<i4")
_INT32 = np.iinfo(np.int32)
# compressions whose TIFF tile encoding is a plain zlib stream: spooled tiles pass through as is
_ZLIB_NAMES = {"zlib", "adobe_deflate"}
_ZLIB_CODES = {8}
_SPOOL_LEVEL_PASSTHROUGH = 6  # zlib level of tiles that end up in the file unchanged
_SPOOL_LEVEL_SCRATCH = 1  # zlib level of tiles that are decoded and re-encoded


def pyramid_shapes(height, width, smallest=1024):
    """Shapes of the levels: level k is ``ceil(height / 2**k) x ceil(width / 2**k)``, down to
    the first level whose long side is <= ``smallest`` (level 0 alone if it already is)."""
    shapes = [(height, width)]
    while max(shapes[-1]) > smallest:
        step = 2 ** len(shapes)
        shapes.append((-(-height // step), -(-width // step)))
    return shapes


def _is_zlib(compression):
    if isinstance(compression, str):
        return compression.lower() in _ZLIB_NAMES
    try:
        return int(compression) in _ZLIB_CODES
    except (TypeError, ValueError):
        return False


def _as_labels(block, width, received):
    """``block`` as a C-contiguous little-endian int32 (rows, width) array, or ValueError."""
    block = np.asarray(block)
    if block.ndim != 2:
        raise ValueError(f"row blocks must be 2-D (rows, width) arrays, got shape {block.shape} "
                         f"at row {received}")
    if block.shape[1] != width:
        raise ValueError(f"row block at row {received} has width {block.shape[1]}, expected {width}")
    if block.dtype == np.bool_ or not np.issubdtype(block.dtype, np.integer):
        raise ValueError(f"row block at row {received} has dtype {block.dtype}; instance labels must "
                         f"be integers (int32 or an integer type that fits it)")
    if block.dtype != LABEL_DTYPE and not np.can_cast(block.dtype, LABEL_DTYPE, "safe") and block.size:
        low, high = int(block.min()), int(block.max())
        if low < _INT32.min or high > _INT32.max:
            raise ValueError(f"row block at row {received} ({block.dtype}) holds labels {low}..{high} "
                             f"outside the int32 range")
    return np.ascontiguousarray(block, dtype=LABEL_DTYPE)


def _checked_blocks(row_blocks, height, width):
    """Validate the stream: yields ``(top, block)``; ValueError on too many or too few rows."""
    received = 0
    for block in row_blocks:
        block = _as_labels(block, width, received)
        if received + len(block) > height:
            raise ValueError(f"row blocks hold more rows than the map height: received at least "
                             f"{received + len(block)} rows, expected {height}")
        if len(block):
            yield received, block
        received += len(block)
    if received != height:
        raise ValueError(f"row blocks ended after {received} rows, expected {height}")


class _Band:
    """A band of ``tile`` rows of one level being filled. The buffer of a completed band is
    handed out and a new one allocated only when the next rows arrive, so a level never holds
    more than one band once its consumer has dropped the previous one."""

    def __init__(self, width, tile):
        self.width, self.tile, self.rows, self.fill = width, tile, None, 0

    def add(self, rows):
        """Append ``rows``; yields each band of ``tile`` rows as soon as it is complete."""
        start = 0
        while start < len(rows):
            if self.rows is None:
                self.rows, self.fill = np.empty((self.tile, self.width), LABEL_DTYPE), 0
            n = min(self.tile - self.fill, len(rows) - start)
            self.rows[self.fill : self.fill + n] = rows[start : start + n]
            self.fill, start = self.fill + n, start + n
            if self.fill == self.tile:
                full, self.rows = self.rows, None
                yield full
                del full

    def flush(self):
        """The last, incomplete band (a list of zero or one arrays)."""
        rest = [self.rows[: self.fill]] if self.rows is not None and self.fill else []
        self.rows = None
        return rest


class _Spool:
    """Tiles of one sub-level, zlib-compressed one by one into an anonymous temporary file."""

    def __init__(self, directory, shape, tile, level):
        self.shape, self.tile, self.level = shape, tile, level
        self.file = tempfile.TemporaryFile(dir=directory, prefix=".pyramid-spool-")
        self.sizes = array("Q")

    def add_band(self, band):
        tile = self.tile
        for c in range(0, band.shape[1], tile):
            block = band[:, c : c + tile]
            if block.shape != (tile, tile):  # edge tile: zero-pad like tifffile does
                block = np.pad(block, ((0, tile - block.shape[0]), (0, tile - block.shape[1])))
            data = zlib.compress(np.ascontiguousarray(block).tobytes(), self.level)
            self.file.write(data)
            self.sizes.append(len(data))

    def tiles(self, decode):
        """The spooled tiles in order: their zlib bytes, or (``decode``) int32 arrays."""
        self.file.flush()
        self.file.seek(0)
        for size in self.sizes:
            data = self.file.read(size)
            if len(data) != size:
                raise OSError("temporary pyramid spool file is truncated")
            if decode:
                yield np.frombuffer(zlib.decompress(data), LABEL_DTYPE).reshape(self.tile, self.tile)
            else:
                yield data

    def close(self):
        self.file.close()


class _Unclosable:
    """An iterator over ``generator`` without ``close``: tifffile wraps the level-0 tiles in a
    generator (``yield from``) that, once dropped, would close ours and skip its end."""

    def __init__(self, generator):
        self._generator = generator

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._generator)


def _level_rows(top, block, step):
    """Rows of ``block`` (starting at map row ``top``) that level ``step`` keeps, every
    ``step``-th column: a strided view."""
    return block[(-top) % step :: step, ::step]


def write_label_pyramid(path, row_blocks, height, width, mpp=None, tile=256, smallest=1024, compression="zlib", uuid=None):
    """Write an int32 instance-label map arriving as row blocks as a tiled pyramidal TIFF.

    ``row_blocks``: an iterable of integer arrays ``(rows, width)`` covering map rows
    ``0..height`` top to bottom in order (any block heights, empty blocks allowed). Integer
    dtypes are converted to int32 (ValueError if a value does not fit); floats, bools, a wrong
    width or a total row count other than ``height`` raise ValueError naming what was expected
    and received. ``mpp``: micrometres per pixel of level 0, stored as OME PhysicalSizeX/Y and
    as TIFF resolution tags (pixels per centimetre, ``1e4 / mpp``, scaled on each level).
    ``tile``: tile side (a multiple of 16). ``compression``: any tifffile compression. ``uuid``:
    the OME UUID (default: tifffile's, new on every write), so that the same computation can
    give the same bytes.

    Layout: level 0 is the first IFD (OME-XML in its description); level k (``ceil(height /
    2**k) x ceil(width / 2**k)``, ``labels[::2**k, ::2**k]``) is SubIFD k-1 of level 0, down to
    the first level whose long side is <= ``smallest``. Returns the number of levels.

    Design: one pass over the stream. Each incoming block is cut, for every level k, into the
    rows and columns that level keeps (a strided view, no resampling) and appended to that
    level's band of ``tile`` rows. Completed level-0 bands become tiles that tifffile encodes
    and writes straight into the output file (tifffile pulls them from a generator, so the
    stream is consumed while level 0 is written). Completed sub-level bands are cut into
    tiles, each zlib-compressed and appended to an anonymous temporary spool file per
    sub-level in the output folder (unlinked at creation, so nothing is left behind even on a
    crash). Once level 0 is written, each sub-level is copied from its spool into its SubIFD:
    for zlib output the spooled tiles are already the final encoded tiles and are written as
    they are; for other compressions they are decoded and handed to tifffile to re-encode.

    Memory (independent of height): one band of ``tile`` rows per level, i.e. at most
    ``tile * width * 4 * (1 + 1/2 + 1/4 + ...) < 2 * tile * width * 4`` bytes (under 310 MB
    for a 150,000 px wide slide with 256 px tiles, under 16 MB for 8192 px), plus a few tiles
    being encoded, the caller's current block, and 8 bytes of bookkeeping per spooled tile.
    Tiles are encoded in the calling thread (tifffile ``maxworkers=1``), so tifffile buffers
    nothing.

    Disk: the output (under ``path + ".partial"`` until complete, then renamed to ``path``)
    plus the spooled sub-levels, which hold 1/4 + 1/16 + ... = about 1/3 of level 0's pixels,
    compressed (about 1/3 of the level-0 compressed size for zlib output); each is freed once
    copied into the output. Files larger than 2 GiB uncompressed are written as BigTIFF. On any
    error the partial file and the spools are removed and the exception is re-raised.
    """
    height, width, tile, smallest = int(height), int(width), int(tile), int(smallest)
    if height < 1 or width < 1:
        raise ValueError(f"label map must be at least 1 x 1 px, got {height} x {width}")
    if tile < 16 or tile % 16:
        raise ValueError(f"tile must be a positive multiple of 16, got {tile}")
    if smallest < 1:
        raise ValueError(f"smallest must be >= 1, got {smallest}")
    if mpp is not None and not (math.isfinite(mpp) and mpp > 0):
        raise ValueError(f"mpp must be a positive number of micrometres per pixel, got {mpp}")

    path = Path(path)
    partial = partial_path(path)
    shapes = pyramid_shapes(height, width, smallest)
    passthrough = _is_zlib(compression)
    raw_bytes = sum(h * w for h, w in shapes) * LABEL_DTYPE.itemsize
    metadata = {"axes": "YX", "Name": path.name.split(".")[0], **({"UUID": f"urn:uuid:{uuid}"} if uuid else {})}
    if mpp is not None:
        metadata.update(PhysicalSizeX=float(mpp), PhysicalSizeXUnit="µm",
                        PhysicalSizeY=float(mpp), PhysicalSizeYUnit="µm")

    def options(level):
        opts = dict(dtype=LABEL_DTYPE, shape=shapes[level], tile=(tile, tile), compression=compression,
                    photometric="minisblack", maxworkers=1, buffersize=tile * width * LABEL_DTYPE.itemsize)
        if mpp is not None:
            per_cm = 1e4 / (mpp * 2**level)
            opts.update(resolution=(per_cm, per_cm), resolutionunit="CENTIMETER")
        return opts

    try:
        with ExitStack() as stack:
            spools = []
            for level in range(1, len(shapes)):
                spool = _Spool(path.parent, shapes[level], tile,
                               _SPOOL_LEVEL_PASSTHROUGH if passthrough else _SPOOL_LEVEL_SCRATCH)
                stack.callback(spool.close)
                spools.append(spool)
            sub_bands = [_Band(spool.shape[1], tile) for spool in spools]
            level0 = _Band(width, tile)

            def band_tiles(band):
                # copies (tifffile would make them contiguous anyway): tifffile keeps the first
                # tile for the whole write, and a view would keep its whole band alive
                return (band[:, c : c + tile].copy() for c in range(0, width, tile))

            def to_spools(top, block):
                for k, (band, spool) in enumerate(zip(sub_bands, spools), start=1):
                    for full in band.add(_level_rows(top, block, 2**k)):
                        spool.add_band(full)

            def level0_tiles():
                for top, block in _checked_blocks(row_blocks, height, width):
                    to_spools(top, block)
                    for full in level0.add(block):
                        yield from band_tiles(full)
                        del full  # drop the band before the next one is allocated
                    del block
                for band, spool in zip(sub_bands, spools):
                    for rest in band.flush():
                        spool.add_band(rest)
                for rest in level0.flush():
                    yield from band_tiles(rest)

            tif = tifffile.TiffWriter(partial, bigtiff=raw_bytes >= 2**31, byteorder="<", ome=True)

            def close_tif(exc_type, exc, traceback):
                try:
                    tif.close()
                except Exception:
                    if exc_type is None:
                        raise  # a failure to finish the file is the error
                return False  # after an error, closing an unfinished file may fail too: keep the first error

            stack.push(close_tif)
            tiles = level0_tiles()
            tif.write(data=_Unclosable(tiles), subifds=len(shapes) - 1, metadata=metadata, **options(0))
            # tifffile stops pulling after the last level-0 tile: finish the stream, which
            # checks that no rows are left over and flushes the sub-levels' last bands
            for _ in tiles:
                raise RuntimeError("more level-0 tiles than the TIFF holds")  # cannot happen
            for level, spool in enumerate(spools, start=1):
                tif.write(data=spool.tiles(decode=not passthrough), subfiletype=1, metadata=None, **options(level))
                spool.close()
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, path)
    return len(shapes)
