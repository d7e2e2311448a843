"""One lazy ``Slide`` interface for whole-slide images and plain images, with microns per pixel.

Design:

* :func:`open_slide` picks the reader: a file OpenSlide recognises (Aperio, Hamamatsu,
  tiled pyramidal TIFF, ...) becomes an :class:`OpenSlideSlide`; anything else must be a
  plain PNG/JPEG/BMP/single-page TIFF and becomes an :class:`ImageSlide` (OpenSlide is not
  even imported for it).  Every decoder failure becomes a
  :class:`~nuclei_tf.data.errors.DataError` naming the file.
* Pixels are read on demand with :meth:`Slide.read_region` (RGB uint8, white outside the
  slide and where the scan is transparent), so memory stays bounded by the request; only
  :meth:`Slide.thumbnail` reads a whole level, and it picks a small one.
* ``Slide.mpp`` is what the file records, unvalidated (``None`` if nothing is recorded).
  It is checked with :func:`check_mpp` when a :class:`ResampledView` uses it, so an
  implausible tag such as the 72-dpi default (352.8 um/px, e.g. ``boxes.tiff``) is refused
  there with a message asking for ``--mpp``, which overrides it.  Nothing is guessed.
* :class:`ResampledView` shows the slide, or a level-0 region of interest (ROI), at a
  model's resolution: it reads the coarsest pyramid level that is still at least as fine
  as the model and resizes with OpenCV.  Boxes reaching past the ROI read the real slide
  pixels around it as context; only pixels outside the slide are white.
"""
import math
from pathlib import Path

import cv2
import numpy as np

from nuclei_tf.data.errors import DataError
from nuclei_tf.data.io import (IMAGE_SUFFIXES, TIFF_SUFFIXES, decoding, image_shape, on_white, read_image, shown_shape,
                               tiff_orientation)

MIN_MPP, MAX_MPP = 0.05, 20.0
LEVEL_TOLERANCE = 1e-3  # relative slack when matching a level's downsample to the wanted one
_MICRONS_PER_UNIT = {2: 25400.0, 3: 10000.0}  # TIFF ResolutionUnit: 2 inch, 3 centimeter


def plausible_mpp(value):
    """True when ``value`` (um/px) lies in the range of microscopes, MIN_MPP..MAX_MPP."""
    return value is not None and MIN_MPP <= value <= MAX_MPP


def check_mpp(value, source):
    """Return ``value`` as a float if it is a plausible microns-per-pixel, else raise DataError.

    ``source`` says where the value came from (a file and tag, or ``--mpp``); the error
    message starts with it.
    """
    try:
        mpp = float(value)
    except (TypeError, ValueError):
        raise DataError(source, f"microns per pixel {value!r} is not a number") from None
    if math.isfinite(mpp) and MIN_MPP <= mpp <= MAX_MPP:
        return mpp
    problem = f"microns per pixel {value!r} is outside the plausible range {MIN_MPP}..{MAX_MPP}"
    if math.isfinite(mpp) and mpp > MAX_MPP:
        problem += (
            " (it looks like a screen-resolution tag, e.g. 72 dpi = 352.8 um/px, not a microscope scan)"
        )
    raise DataError(source, problem + "; pass --mpp with the real value (about 0.25 at 40x, 0.5 at 20x)")


class Slide:
    """Base class: level geometry, microns per pixel and lazy RGB reads of one image file."""

    path: Path
    vendor: str
    is_whole_slide: bool
    dimensions: tuple
    level_dimensions: list
    level_downsamples: list
    mpp = None
    mpp_source = ""  # where ``mpp`` was read from, for error messages

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"{type(self).__name__}({str(self.path)!r}, vendor={self.vendor!r}, dimensions={self.dimensions})"

    @property
    def level_count(self):
        return len(self.level_dimensions)

    def read_region(self, x, y, level, width, height):
        """RGB uint8 (height, width, 3); (x, y) in level-0 pixels, size in pixels of ``level``.

        Pixels outside the slide, or transparent in the scan, are white.
        """
        if not 0 <= level < self.level_count:
            raise DataError(self.path, f"level {level} does not exist (the slide has {self.level_count})")
        if width < 0 or height < 0:
            raise DataError(self.path, f"region size {width} x {height} is negative")
        return self._read_region(int(x), int(y), int(level), int(width), int(height))

    def _read_region(self, x, y, level, width, height):
        raise NotImplementedError

    def thumbnail(self, max_size):
        """The whole slide, long side <= ``max_size`` (never enlarged), from the smallest level that suffices."""
        if max_size < 1:
            raise ValueError(f"max_size must be >= 1, got {max_size}")
        level = 0
        for index, size in enumerate(self.level_dimensions):
            if max(size) >= max_size:
                level = index  # levels go from large to small: keep the last one still big enough
        width, height = self.level_dimensions[level]
        image = self.read_region(0, 0, level, width, height)
        scale = min(1.0, max_size / max(self.dimensions))
        size = tuple(max(1, round(d * scale)) for d in self.dimensions)
        if size == (width, height):
            return image
        return cv2.resize(image, size, interpolation=cv2.INTER_AREA)

    def close(self):
        pass


#: pixels per OpenSlide call when reading a large region
READ_PIXELS = 1 << 22


class OpenSlideSlide(Slide):
    """A file opened by OpenSlide (vendor formats, tiled pyramidal TIFFs)."""

    is_whole_slide = True

    def __init__(self, path):
        import openslide

        self.path = Path(path)
        try:
            self._osr = openslide.OpenSlide(str(self.path))
        except Exception as exc:
            raise DataError(self.path, f"unsupported or corrupt slide ({exc})") from None
        props = self._osr.properties
        self.vendor = props.get("openslide.vendor", "unknown")
        self.dimensions = tuple(self._osr.dimensions)
        self.level_dimensions = [tuple(d) for d in self._osr.level_dimensions]
        self.level_downsamples = [float(d) for d in self._osr.level_downsamples]
        values = [props.get("openslide.mpp-x"), props.get("openslide.mpp-y")]
        if None not in values:  # both axes recorded; a lone axis is not trusted
            self.mpp_source = f"{self.path} (openslide.mpp-x/mpp-y)"
            try:
                self.mpp = (float(values[0]) + float(values[1])) / 2
            except ValueError:
                raise DataError(self.path, f"unreadable microns-per-pixel properties {values}") from None

    def _read_region(self, x, y, level, width, height):
        """Read in bands of at most :data:`READ_PIXELS` pixels (whole-number downsamples: the
        bands' level-0 rows are exact), so a strip as wide as the slide never needs more
        than its RGB output plus one band of RGBA."""
        out = np.empty((height, width, 3), np.uint8)
        downsample = self.level_downsamples[level]
        rows = max(1, READ_PIXELS // max(width, 1)) if downsample == int(downsample) else max(height, 1)
        for top in range(0, height, rows):
            count = min(rows, height - top)
            try:
                rgba = np.asarray(self._osr.read_region((x, y + int(top * downsample)), level, (width, count)))
            except Exception as exc:
                raise DataError(self.path, f"unsupported or corrupt slide: cannot read region ({exc})") from None
            on_white(rgba, out[top : top + count])
        return out

    def close(self):
        self._osr.close()


class ImageSlide(Slide):
    """A plain PNG/JPEG/BMP/single-page TIFF as a one-level slide; pixels are decoded on first read."""

    vendor = "image"
    is_whole_slide = False

    def __init__(self, path):
        self.path = Path(path)
        if self.path.suffix.lower() in TIFF_SUFFIXES:
            self._read_tiff_header()
        else:
            height, width = image_shape(self.path)
            self.dimensions = (width, height)
        self.level_dimensions = [self.dimensions]
        self.level_downsamples = [1.0]
        self._pixels = None

    def _read_tiff_header(self):
        import tifffile

        with decoding(self.path), tifffile.TiffFile(self.path) as tif:
            if len(tif.pages) != 1:
                raise DataError(self.path, f"TIFF holds {len(tif.pages)} pages and OpenSlide does not open it; "
                                "expected one image or a tiled pyramidal TIFF")
            page = tif.pages[0]
            # as shown (Orientation applied, as read_image reads it); also for planar (samples-first) pages
            self.dimensions = shown_shape(page.imagelength, page.imagewidth, tiff_orientation(page, self.path))[::-1]
            tags = page.tags
            unit = tags["ResolutionUnit"].value if "ResolutionUnit" in tags else None
            if unit in _MICRONS_PER_UNIT and "XResolution" in tags and "YResolution" in tags:
                per_unit = [num / den for num, den in (tags["XResolution"].value, tags["YResolution"].value) if den]
                if len(per_unit) == 2 and all(per_unit):
                    self.mpp = sum(_MICRONS_PER_UNIT[unit] / p for p in per_unit) / 2
                    name = "inch" if unit == 2 else "centimeter"
                    self.mpp_source = f"{self.path} (TIFF XResolution/YResolution per {name})"

    def _read_region(self, x, y, level, width, height):
        if self._pixels is None:
            self._pixels = read_image(self.path)
        slide_h, slide_w = self._pixels.shape[:2]
        if (x, y, width, height) == (0, 0, slide_w, slide_h):
            return self._pixels  # the whole image: no copy (a plain image of any size is predicted from it)
        out = np.full((height, width, 3), 255, np.uint8)
        x0, y0 = max(x, 0), max(y, 0)
        x1, y1 = min(x + width, slide_w), min(y + height, slide_h)
        if x1 > x0 and y1 > y0:
            out[y0 - y : y1 - y, x0 - x : x1 - x] = self._pixels[y0:y1, x0:x1]
        return out

    def close(self):
        self._pixels = None


def open_slide(path):
    """Open ``path`` as an :class:`OpenSlideSlide` if OpenSlide recognises it, else as an :class:`ImageSlide`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    try:
        import openslide
    except ImportError:
        openslide = None
    if openslide is not None:
        try:
            vendor = openslide.OpenSlide.detect_format(str(path))
        except Exception as exc:
            raise DataError(path, f"unsupported or corrupt slide ({exc})") from None
        if vendor is not None:
            return OpenSlideSlide(path)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        reason = "OpenSlide is not installed" if openslide is None else "OpenSlide does not recognise it"
        raise DataError(path, f"unsupported or corrupt slide: {reason} and it is not a "
                        f"{'/'.join(sorted(s[1:].upper() for s in IMAGE_SUFFIXES))} image")
    try:
        return ImageSlide(path)
    except DataError as exc:
        raise DataError(path, f"unsupported or corrupt slide: {exc.problem}") from None


class ResampledView:
    """The slide, or a level-0 region of interest of it, at a model's microns per pixel.

    Model-space coordinates are relative to the ROI's top-left.  ``slide_mpp`` (the
    ``--mpp`` option) overrides the file's value.  A plain image without a recorded mpp is
    used at its own pixels (downsample 1) and ``assumed_mpp`` is True so the caller can say
    so (also when its resolution tag is implausible, such as the 72 dpi of some MoNuSeg
    TIFFs); a whole slide without one, or with an implausible one, is an error.
    """

    def __init__(self, slide, model_mpp, slide_mpp=None, roi=None):
        self.slide = slide
        self.model_mpp = check_mpp(model_mpp, "model mpp")
        self.assumed_mpp = False
        if slide_mpp is not None:
            self.slide_mpp = check_mpp(slide_mpp, "--mpp")
        elif slide.mpp is not None and (slide.is_whole_slide or plausible_mpp(slide.mpp)):
            self.slide_mpp = check_mpp(slide.mpp, slide.mpp_source or str(slide.path))
        elif not slide.is_whole_slide:  # no resolution, or a plain image's screen-dpi tag (MoNuSeg's 72 dpi)
            self.slide_mpp, self.assumed_mpp = self.model_mpp, True
        else:
            raise DataError(slide.path, f"no microns-per-pixel in {slide.path.name}; pass --mpp")
        self.downsample = self.model_mpp / self.slide_mpp
        self.level = max(
            (i for i, d in enumerate(slide.level_downsamples) if d <= self.downsample * (1 + LEVEL_TOLERANCE)),
            key=lambda i: slide.level_downsamples[i],
            default=0,
        )
        x, y, w, h = self._check_roi(roi)
        self.origin = (x, y)
        self.roi = (x, y, w, h)
        self.shape = (max(1, round(h / self.downsample)), max(1, round(w / self.downsample)))

    def _check_roi(self, roi):
        width, height = self.slide.dimensions
        if roi is None:
            return 0, 0, width, height
        try:
            x, y, w, h = (int(v) for v in roi)
            integral = all(int(v) == v for v in roi)
        except (TypeError, ValueError):
            raise DataError(self.slide.path, f"ROI {roi!r} is not four integers (x, y, width, height)") from None
        if not integral or w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > width or y + h > height:
            raise DataError(self.slide.path, f"ROI (x, y, w, h) = {tuple(roi)} is empty or not inside "
                            f"the slide's {width} x {height} level-0 pixels")
        return x, y, w, h

    def to_level0(self, x, y):
        """Model-space (x, y), relative to the ROI, in level-0 pixels (floats)."""
        return self.origin[0] + x * self.downsample, self.origin[1] + y * self.downsample

    def read(self, x, y, width, height):
        """RGB uint8 (height, width, 3) of the model-space box at (x, y) relative to the ROI.

        The box's level-0 edges are rounded to whole pixels of the level read (at most half
        a level pixel off, and adjacent boxes share edges; OpenSlide interpolates sub-pixel
        when a level's downsample is not an integer), then resized with INTER_AREA
        when shrinking or INTER_LINEAR when enlarging.  Slide pixels around the ROI are
        read as context; outside the slide is white.
        """
        if width <= 0 or height <= 0:
            raise ValueError(f"box size must be positive, got {width} x {height}")
        level_ds = self.slide.level_downsamples[self.level]
        (ax0, ay0), (ax1, ay1) = self.to_level0(x, y), self.to_level0(x + width, y + height)
        lx0, ly0 = round(ax0 / level_ds), round(ay0 / level_ds)
        lw = max(1, round(ax1 / level_ds) - lx0)
        lh = max(1, round(ay1 / level_ds) - ly0)
        region = self.slide.read_region(round(lx0 * level_ds), round(ly0 * level_ds), self.level, lw, lh)
        if (lw, lh) == (width, height):
            return region
        shrink = lw >= width and lh >= height
        return cv2.resize(region, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
