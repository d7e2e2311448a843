"""Reading images and label maps from disk, with one clear error per bad file.

Conversions (documented, never silent corruption):

* RGBA -> RGB and grey+alpha -> grey by compositing on white (:func:`on_white`), the
  background of a bright-field slide; opaque pixels (TNBC's RGBA PNGs) keep their values.
  A TIFF's extra sample must be tagged as alpha (ExtraSamples): associated (premultiplied) alpha
  is composited as ``c + 255 - a``.
* grey-scale (H x W or H x W x 1) -> RGB by repeating the channel.
* more than 8 bits -> 8-bit by the linear map of the recorded full scale onto 0..255: TIFF
  ``MaxSampleValue``, or ``2^BitsPerSample - 1`` for samples stored wider than their bits (12-bit
  data unpacked into 16); otherwise 0..65535 (``round(x / 257)``), which is refused when the
  values never reach 32768: 12- or 14-bit data, nearly black at 16 bits (:func:`to_uint8`).
  16-bit PNGs are decoded at 16 bits (Pillow would keep only the high byte).
* palette (indexed) PNG/TIFF -> the palette's colours; CMYK JPEG/TIFF -> RGB (Pillow's
  conversion; TIFF: 255 (1 - C)(1 - K) ...); min-is-white grey TIFF -> inverted; bilevel -> grey.
* planar (separate-plane) RGB TIFF -> interleaved RGB.
* EXIF / TIFF Orientation -> the pixels turned and flipped as a viewer shows them (images and
  label maps alike, so that they stay aligned; :func:`oriented`).

Anything else (floats, 2 channels not tagged grey + alpha, 4 not tagged RGB + alpha or CMYK, more
than 4, 1-D data, multi-plane TIFF stacks, an Orientation outside 1-8, unreadable bytes) raises
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
    channels: an ImageJ or OME stack) is refused: which plane is the image would be a guess.
    Singleton axes (an H x W x 1 label map) are no stack."""
    series = tif.series[0] if tif.series else None
    if series is not None and series.size > page.size:
        raise DataError(path, f"holds a stack of {series.size // page.size} images (axes {series.axes}, shape "
                              f"{series.shape}); one 2-D image per file is read: save the plane to segment as its own file")


#: EXIF / TIFF Orientation value -> (transpose first, then flip rows, flip columns): how the
#: stored pixels become what a viewer shows (TIFF 6.0 tag 274; the same values in EXIF)
ORIENTATIONS = {1: (False, False, False), 2: (False, False, True), 3: (False, True, True), 4: (False, True, False),
                5: (True, False, False), 6: (True, False, True), 7: (True, True, True), 8: (True, True, False)}


def check_orientation(value, path):
    """``value`` (an Orientation tag; None when there is none: 1) if it is one of 1-8, else refused."""
    value = 1 if value is None else value
    if value not in ORIENTATIONS:
        raise DataError(path, f"Orientation tag {value!r} is not one of 1-8; cannot tell how the image is shown")
    return value


def oriented(array, orientation):
    """The stored ``array`` (H x W [x C]) as a viewer shows it under ``orientation`` (1-8)."""
    transpose, flip_rows, flip_columns = ORIENTATIONS[orientation]
    if transpose:
        array = array.swapaxes(0, 1)
    return np.ascontiguousarray(array[:: -1 if flip_rows else 1, :: -1 if flip_columns else 1])


def shown_shape(height, width, orientation):
    """(H, W) of an image of stored ``height`` x ``width`` as shown under ``orientation``."""
    return (width, height) if ORIENTATIONS[orientation][0] else (height, width)


def tiff_orientation(page, path):
    tag = page.tags.get("Orientation")
    return check_orientation(None if tag is None else int(tag.value), path)


def _exif_orientation(im, path):
    return check_orientation(im.getexif().get(0x0112), path)


def _png_bit_depth(path):
    """The bit depth in a PNG's IHDR (None for another format)."""
    with open(path, "rb") as handle:
        head = handle.read(26)
    return head[24] if head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) == 26 else None


def _decode(path, colour=False):
    """``(array, full_scale)``: a TIFF (tifffile, LZW via imagecodecs) or any Pillow format
    decoded and oriented as shown; ``full_scale`` the recorded full-scale sample value (None:
    unrecorded, the type's range).

    ``colour``: the pixels as a viewer shows them (palette and CMYK images become RGB(A),
    min-is-white grey is inverted, alpha checked); otherwise the stored values (label maps may
    be palette PNGs).
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
                array = oriented(array, tiff_orientation(page, path))
                return _tiff_colour(page, array, path) if colour else (array, None)
        from PIL import Image

        limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None  # whole slides are not decompression bombs
        try:
            with Image.open(path) as im:
                orientation = _exif_orientation(im, path)
                if _png_bit_depth(path) == 16:  # Pillow keeps only the high byte of 16-bit colour
                    import imagecodecs

                    return oriented(imagecodecs.png_decode(path.read_bytes()), orientation), None
                im.load()
                if colour and im.mode in PILLOW_TO_RGB:
                    im = im.convert(PILLOW_TO_RGB[im.mode])
                return oriented(np.asarray(im), orientation), None
        finally:
            Image.MAX_IMAGE_PIXELS = limit


def _read_array(path, colour=False):
    """The decoded pixels of ``path`` (:func:`_decode`) without their full scale."""
    return _decode(path, colour)[0]


#: Pillow modes whose values are not what a viewer shows -> the mode they are shown in
PILLOW_TO_RGB = {"P": "RGBA", "PA": "RGBA", "CMYK": "RGB", "YCbCr": "RGB", "LAB": "RGB", "HSV": "RGB", "1": "L"}


def _tiff_full_scale(page, array):
    """The recorded full-scale value of a TIFF page's samples: MaxSampleValue, else
    ``2^BitsPerSample - 1`` where the samples are stored wider than their bits; else None."""
    tag = page.tags.get("MaxSampleValue")
    if tag is not None:
        return int(np.max(tag.value))
    bits = int(np.max(page.bitspersample))
    if np.issubdtype(array.dtype, np.integer) and bits < 8 * array.dtype.itemsize:
        return 2**bits - 1
    return None


def _tiff_colour(page, array, path):
    """``(pixels, full_scale)`` of a TIFF page in RGB / grey (+ straight alpha) as viewers show
    them (TIFF 6.0 PhotometricInterpretation and ExtraSamples)."""
    import tifffile

    kind = tifffile.PHOTOMETRIC
    full_scale = _tiff_full_scale(page, array)
    if array.dtype == bool:  # bilevel
        array, full_scale = array.astype(np.uint8), 1
    if page.photometric == kind.PALETTE:
        colormap = page.colormap  # 3 x 2^bits, 16-bit
        return np.round(colormap[:, array].transpose(1, 2, 0) / 257.0).astype(np.uint8), None
    if page.photometric == kind.SEPARATED:
        if array.ndim != 3 or array.shape[-1] != 4 or array.dtype != np.uint8:
            raise DataError(path, f"separated (CMYK) TIFF with shape {array.shape} and type {array.dtype} is not supported; "
                            "expected 8-bit CMYK")
        ink = array.astype(np.float32) / 255.0  # naive CMYK -> RGB, as viewers without an ICC profile
        return np.round(255.0 * (1.0 - ink[..., :3]) * (1.0 - ink[..., 3:])).astype(np.uint8), None
    if page.photometric not in (kind.MINISBLACK, kind.MINISWHITE, kind.RGB, kind.YCBCR):
        raise DataError(path, f"TIFF colour space {page.photometric.name} is not supported; save it as RGB")
    if page.photometric == kind.MINISWHITE and np.issubdtype(array.dtype, np.integer):
        array = (full_scale or np.iinfo(array.dtype).max) - array
    return _alpha_checked(page, array, full_scale, path), full_scale


def _alpha_checked(page, array, full_scale, path):
    """A TIFF page's colour samples, plus an alpha channel only where ExtraSamples says it is one;
    associated (premultiplied) alpha is composited on white here (``c + full - a``)."""
    import tifffile

    grey = page.photometric in (tifffile.PHOTOMETRIC.MINISBLACK, tifffile.PHOTOMETRIC.MINISWHITE)
    colour = 1 if grey else 3
    samples = array.shape[-1] if array.ndim == 3 else 1
    if samples == colour:
        return array
    extras = tuple(page.extrasamples or ())
    alphas = (tifffile.EXTRASAMPLE.ASSOCALPHA, tifffile.EXTRASAMPLE.UNASSALPHA)
    if samples != colour + 1 or len(extras) != 1 or extras[0] not in alphas:
        named = ", ".join(tifffile.EXTRASAMPLE(e).name for e in extras) or "none"
        raise DataError(path, f"{'grey' if grey else page.photometric.name} TIFF with {samples} samples per pixel and "
                              f"ExtraSamples {named}: only grey, grey + alpha, RGB or RGB + alpha (ExtraSamples "
                              "ASSOCALPHA or UNASSALPHA) are read; which samples are the image would be a guess")
    if extras[0] == tifffile.EXTRASAMPLE.UNASSALPHA:
        return array
    full = full_scale or np.iinfo(array.dtype).max
    wide = array.astype(np.int64)
    return np.minimum(wide[..., :colour] + (full - wide[..., colour:]), full).astype(array.dtype)


def to_uint8(array, path, full_scale=None):
    """Map 8- to 16-bit pixel data to uint8: ``round(x * 255 / full_scale)`` for a recorded full
    scale (values above it are refused); uint16 without one as 0..65535 (``round(x / 257)``),
    refused when no value reaches 32768 (12- or 14-bit data would come out nearly black)."""
    if array.dtype not in (np.uint8, np.uint16):
        raise DataError(path, f"unsupported pixel type {array.dtype}; expected 8- or 16-bit unsigned integers")
    if full_scale is not None and full_scale < 1:
        raise DataError(path, f"records a full-scale sample value of {full_scale} (MaxSampleValue); expected >= 1")
    top = np.iinfo(array.dtype).max
    if array.dtype == np.uint8 and full_scale in (None, top):
        return array  # the common case: no pass over the pixels
    peak = int(array.max(initial=0))
    if full_scale is None and peak < 2**15:
        raise DataError(path, f"16-bit pixels reach only {peak} of 65535 (about {max(peak.bit_length(), 1)}-bit data) and "
                              "the bit depth is not recorded (no TIFF MaxSampleValue or BitsPerSample below 16): "
                              "scaled as 16-bit it would be nearly black. Convert it to 8-bit, or record the full "
                              "scale (e.g. MaxSampleValue 4095 for 12-bit data)")
    if full_scale is None or full_scale == top:
        return np.round(array / 257.0).astype(np.uint8)
    if peak > full_scale:
        raise DataError(path, f"pixel values reach {peak}, above the recorded full scale {full_scale}")
    return np.round(array * (255.0 / full_scale)).astype(np.uint8)


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
    array, full_scale = _decode(path, colour=True)
    return to_rgb(to_uint8(array, path, full_scale), path)


def read_label(path):
    """Read an instance-label image (0 = background, 1..N = nuclei) as int32 H x W (a 1-bit image as
    0/1; floats only when every value is a whole number)."""
    array = _read_array(path)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 2:
        raise DataError(path, f"expected a single-channel label map, got shape {array.shape}")
    if array.dtype == bool:
        array = array.astype(np.uint8)
    elif np.issubdtype(array.dtype, np.floating):  # whole numbers stored as floats convert exactly; others are refused
        fractional = ~np.isfinite(array) | (array != np.round(array))
        if fractional.any():
            r, c = np.argwhere(fractional)[0]
            raise DataError(path, f"label map holds non-integer ids ({array[r, c]} at x={c}, y={r}); ids are whole numbers")
        if array.size and array.max() > np.iinfo(np.int32).max:
            raise DataError(path, f"label ids exceed int32 (max {array.max()})")
        array = array.astype(np.int64)
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
    """(H, W) of an image as shown (Orientation applied), from its header without decoding the pixels."""
    with decoding(path) as path:
        if path.suffix.lower() in TIFF_SUFFIXES:
            import tifffile

            with tifffile.TiffFile(path) as tif:
                page = _tiff_first_page(tif, path)
                return shown_shape(page.imagelength, page.imagewidth, tiff_orientation(page, path))
        from PIL import Image

        with Image.open(path) as im:
            return shown_shape(im.size[1], im.size[0], _exif_orientation(im, path))
