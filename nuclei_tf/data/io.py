"""Reading images and label maps from disk, with one clear error per bad file.

Conversions (documented, never silent corruption):

* RGBA -> RGB and grey+alpha -> grey by compositing on white (:func:`on_white`), the
  background of a bright-field slide; opaque pixels (TNBC's RGBA PNGs) keep their values.
* grey-scale (H x W or H x W x 1) -> RGB by repeating the channel.
* 16-bit -> 8-bit by the linear map ``round(x / 257)`` (0..65535 onto 0..255).
* palette (indexed) PNG/TIFF -> the palette's colours; CMYK JPEG/TIFF -> RGB (Pillow's
  conversion; TIFF: 255 (1 - C)(1 - K) ...); min-is-white grey TIFF -> inverted; bilevel -> grey.
* planar (separate-plane) RGB TIFF -> interleaved RGB.

Anything else (floats, 2 or >4 channels, 1-D data, multi-plane TIFF stacks, unreadable bytes) raises
:class:`~nuclei_tf.data.errors.DataError` naming the file.
"""
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from nuclei_tf.data.errors import DataError

TIFF_SUFFIXES = {".tif", ".tiff"}
IMAGE_SUFFIXES = TIFF_SUFFIXES | {".png", ".jpg", ".jpeg", ".bmp"}


@contextmanager
def decoding(path):
    """Check ``path`` exists, and turn any decoder exception into one DataError naming it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    try:
        yield path
    except DataError:
        raise
    except MemoryError:
        raise DataError(path, "is too large to decode in memory; save it as a tiled pyramidal slide "
                              "(read region by region) or use a machine with more memory") from None
    except Exception as exc:  # every decoder has its own exception types
        raise DataError(path, f"cannot be decoded as an image, corrupt or truncated? ({exc})") from None


def _tiff_first_page(tif, path):
    if len(tif.pages) == 0:
        raise DataError(path, "cannot be decoded as an image, corrupt or truncated? (TIFF holds no page)")
    return tif.pages[0]


def _refuse_stacks(tif, page, path):
    """A TIFF whose first series stacks several planes of the first page's size (z, time,
    channels: an ImageJ or OME stack) is refused: which plane is the image would be a guess."""
    series = tif.series[0] if tif.series else None
    if series is not None and len(series.shape) > len(page.shape):
        planes = int(np.prod(series.shape[: len(series.shape) - len(page.shape)]))
        if planes > 1:
            raise DataError(path, f"holds a stack of {planes} images (axes {series.axes}, shape {series.shape}); "
                                  "one 2-D image per file is read: save the plane to segment as its own file")


def _read_array(path, colour=False):
    """Decode a TIFF (tifffile, LZW via imagecodecs) or any Pillow format to an array.

    ``colour``: the pixels as a viewer shows them (palette and CMYK images become RGB(A),
    min-is-white grey is inverted); otherwise the stored values (label maps may be palette PNGs).
    """
    with decoding(path) as path:
        if path.suffix.lower() in TIFF_SUFFIXES:
            import tifffile

            with tifffile.TiffFile(path) as tif:
                page = _tiff_first_page(tif, path)
                _refuse_stacks(tif, page, path)
                array = page.asarray()
                if page.axes.startswith("S") and array.ndim == 3:  # planar (separate) samples -> interleaved
                    array = np.moveaxis(array, 0, -1)
                return _tiff_colour(page, array, path) if colour else array
        from PIL import Image

        limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None  # whole slides are not decompression bombs
        try:
            with Image.open(path) as im:
                im.load()
                if colour and im.mode in PILLOW_TO_RGB:
                    im = im.convert(PILLOW_TO_RGB[im.mode])
                return np.asarray(im)
        finally:
            Image.MAX_IMAGE_PIXELS = limit


#: Pillow modes whose values are not what a viewer shows -> the mode they are shown in
PILLOW_TO_RGB = {"P": "RGBA", "PA": "RGBA", "CMYK": "RGB", "YCbCr": "RGB", "LAB": "RGB", "HSV": "RGB", "1": "L"}


def _tiff_colour(page, array, path):
    """A TIFF page's pixels in RGB / grey as viewers show them (TIFF 6.0 PhotometricInterpretation)."""
    import tifffile

    kind = tifffile.PHOTOMETRIC
    if page.photometric == kind.PALETTE:
        colormap = page.colormap  # 3 x 2^bits, 16-bit
        return np.round(colormap[:, array].transpose(1, 2, 0) / 257.0).astype(np.uint8)
    if page.photometric == kind.MINISWHITE:
        return np.iinfo(array.dtype).max - array if np.issubdtype(array.dtype, np.integer) else array
    if page.photometric == kind.SEPARATED:
        if array.ndim != 3 or array.shape[-1] != 4 or array.dtype != np.uint8:
            raise DataError(path, f"separated (CMYK) TIFF with shape {array.shape} and type {array.dtype} is not supported; "
                            "expected 8-bit CMYK")
        ink = array.astype(np.float32) / 255.0  # naive CMYK -> RGB, as viewers without an ICC profile
        return np.round(255.0 * (1.0 - ink[..., :3]) * (1.0 - ink[..., 3:])).astype(np.uint8)
    if page.photometric not in (kind.MINISBLACK, kind.RGB, kind.YCBCR):
        raise DataError(path, f"TIFF colour space {page.photometric.name} is not supported; save it as RGB")
    return array


def to_uint8(array, path):
    """Map uint8/uint16 pixel data to uint8 (16-bit: ``round(x / 257)``)."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.uint16:
        return np.round(array / 257.0).astype(np.uint8)
    raise DataError(path, f"unsupported pixel type {array.dtype}; expected 8- or 16-bit unsigned integers")


def on_white(colour_alpha, out):
    """Composite straight (un-premultiplied) colour + alpha (the last channel; RGBA as Pillow and
    openslide-python hand it back, or grey + alpha) on white into the uint8 ``out``:
    round((c a + 255 (255 - a)) / 255), exact in uint16 (<= 65152)."""
    alpha = colour_alpha[..., -1:]
    if alpha.min(initial=255) == 255:  # opaque (nearly always): the colour as it is
        out[...] = colour_alpha[..., :-1]
        return out
    mixed = colour_alpha[..., :-1].astype(np.uint16)
    mixed *= alpha
    mixed += 255 * (255 - alpha.astype(np.uint16)) + 127
    mixed //= 255
    out[...] = mixed
    return out


def to_rgb(array, path):
    """Return an H x W x 3 uint8 array from grey, grey+alpha, RGB or RGBA uint8 data."""
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3:
        raise DataError(path, f"expected a 2-D image, got an array of shape {array.shape}")
    channels = array.shape[-1]
    if channels in (2, 4):
        array = on_white(array, np.empty(array.shape[:2] + (channels - 1,), np.uint8))
    if array.shape[-1] == 1:
        return np.repeat(array, 3, axis=-1)
    if array.shape[-1] == 3:
        return np.ascontiguousarray(array)
    raise DataError(path, f"expected 1, 3 or 4 channels, got {channels} (shape {array.shape})")


def read_image(path):
    """Read an RGB image as uint8 H x W x 3, applying the module's documented conversions."""
    array = _read_array(path, colour=True)
    return to_rgb(to_uint8(array, path), path)


def read_label(path):
    """Read an instance-label image (0 = background, 1..N = nuclei) as int32 H x W."""
    array = _read_array(path)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 2:
        raise DataError(path, f"expected a single-channel label map, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        raise DataError(path, f"label map must hold integers, got {array.dtype}")
    if array.size and array.min() < 0:
        raise DataError(path, f"label map holds negative ids (min {array.min()})")
    if array.size and array.max() > np.iinfo(np.int32).max:
        raise DataError(path, f"label ids exceed int32 (max {array.max()})")
    return array.astype(np.int32)


def read_mask(path):
    """Read a one-nucleus mask as bool H x W (non-zero = nucleus).

    Grey, grey+alpha, RGB and RGBA files are accepted; colour ones only when R = G = B
    everywhere (alpha is ignored), since a mask with differing channels is ambiguous.
    """
    array = _read_array(path)
    if array.ndim == 3 and array.shape[-1] in (3, 4):
        colour = array[..., :3]
        if not np.all(colour == colour[..., :1]):
            raise DataError(path, "mask has differing R, G, B channels; expected a grey-scale mask")
        array = colour[..., 0]
    elif array.ndim == 3 and array.shape[-1] in (1, 2):
        array = array[..., 0]
    if array.ndim != 2:
        raise DataError(path, f"expected a 2-D mask, got shape {array.shape}")
    if not (array.dtype == bool or np.issubdtype(array.dtype, np.integer)):
        raise DataError(path, f"mask must hold integers, got {array.dtype}")
    return array > 0


def find_by_stem(folder, stem, suffixes=IMAGE_SUFFIXES):
    """The file in ``folder`` named ``stem`` + one of ``suffixes``, or None."""
    for suffix in sorted(suffixes):
        for candidate in (Path(folder) / f"{stem}{suffix}", Path(folder) / f"{stem}{suffix.upper()}"):
            if candidate.is_file():
                return candidate
    return None


def list_images(folder):
    """Image files directly inside ``folder``, sorted by name."""
    if not Path(folder).is_dir():
        raise DataError(folder, "folder not found")
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def image_shape(path):
    """(H, W) of an image from its header, without decoding the pixels."""
    with decoding(path) as path:
        if path.suffix.lower() in TIFF_SUFFIXES:
            import tifffile

            with tifffile.TiffFile(path) as tif:
                page = _tiff_first_page(tif, path)
                return page.imagelength, page.imagewidth
        from PIL import Image

        with Image.open(path) as im:
            return im.size[1], im.size[0]
