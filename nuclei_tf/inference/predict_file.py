"""One input of `predict`, a plain image or a whole slide, into its outputs: the one path that
`predict` and a cohort's slide tasks share, so that an input segmented either way gives the same
files byte for byte."""
from pathlib import Path
from typing import NamedTuple, Optional

from nuclei_tf.data.errors import DataError
from nuclei_tf.data.slide import ResampledView, open_slide, plausible_mpp

#: smallest image side predicted: a nucleus is about 15-60 px across at the models' 0.25 um/px
MIN_SIDE = 16


class Prediction(NamedTuple):
    """What one input gave: its output ``paths`` ({kind: path}), the ``nuclei`` found, the level-0
    ``mpp`` (None where unknown) and, for slides, the ``tissue_mm2`` predicted (None for plain images)."""

    paths: dict
    nuclei: int
    mpp: Optional[float]
    tissue_mm2: Optional[float]


def check_size(slide):
    """Refuse images narrower than a nucleus in either direction (their "nuclei" would be edge noise)."""
    width, height = slide.dimensions
    if min(width, height) < MIN_SIDE:
        raise DataError(slide.path, f"is {width} x {height} px; each side must be at least {MIN_SIDE} px "
                                    "(a nucleus is 15-60 px across at the models' 0.25 um/px)")


def needs_slide_path(slide, bundle, mpp, roi):
    """Whole slides, and plain images given ``mpp`` / ``roi`` or recording a resolution more than 5%
    away from the model's, are predicted at the model's resolution."""
    if slide.is_whole_slide or mpp is not None or roi is not None:
        return True
    return plausible_mpp(slide.mpp) and bundle.mpp is not None and abs(slide.mpp / bundle.mpp - 1) > 0.05


def plain_pixels(bundle, path, mpp=None, roi=None):
    """``(pixels, microns per pixel or None)`` of a plain image predicted at its own pixels, or
    None for an input that goes through the slide path (:func:`needs_slide_path`)."""
    with open_slide(path) as slide:
        if needs_slide_path(slide, bundle, mpp, roi):
            return None
        return slide.read_region(0, 0, 0, *slide.dimensions), slide.mpp if plausible_mpp(slide.mpp) else None


def predict_file(bundle, path, out_dir, plain, stem=None, mpp=None, roi=None, tissue=True, overlay=None, batch_size=8,
                 model_name="shipped", echo=print, progress=True):
    """Segment ``path`` into ``out_dir/<stem>.*`` (default stem: the file's). ``plain``: what
    :func:`plain_pixels` returned for it. Returns a :class:`Prediction`; a slide stopped by an error
    or Ctrl-C keeps its finished strips, and the error says so. ``progress``: tile progress bars
    (large images, slides)."""
    stem = stem or Path(path).stem
    if plain is not None:
        return _segment_image(bundle, *plain, path, out_dir, stem, batch_size, progress)
    with open_slide(path) as slide:
        return _segment_slide(bundle, slide, Path(path), out_dir, stem, model_name, batch_size, mpp, roi, tissue, overlay,
                              echo, progress)


def _segment_image(bundle, image, image_mpp, path, out_dir, stem, batch_size, progress):
    from nuclei_tf.inference.outputs import write_segmentation
    from nuclei_tf.inference.predict import segment_strips

    large = image.shape[0] * image.shape[1] > 4 * bundle.tile**2
    strips = segment_strips(bundle, image, batch_size=batch_size, progress=progress and large)
    try:
        paths, nuclei = write_segmentation(image, strips, Path(out_dir), stem, image_mpp)
        return Prediction(paths, nuclei, image_mpp, None)
    except DataError:
        raise
    except ValueError as exc:  # e.g. a model that outputs NaN: name the image
        raise DataError(path, str(exc)) from None


def _segment_slide(bundle, slide, path, out_dir, stem, model_name, batch_size, mpp, roi, tissue, overlay, echo, progress):
    from nuclei_tf.inference.wsi import predict_slide, stop_message

    if bundle.mpp is None:
        raise DataError(model_name, "records no training resolution ('mpp' in config.json), so slides cannot be "
                        "brought to it; add the microns per pixel of its training images there")
    view = ResampledView(slide, bundle.mpp, slide_mpp=mpp, roi=roi)
    if view.assumed_mpp:
        echo(f"note: {path} records no resolution: its pixels are taken as the model's {bundle.mpp} um/px (pass --mpp)")
    try:
        paths, nuclei, tissue_mm2 = predict_slide(bundle, slide, view, out_dir, stem, model_name, tissue=tissue,
                                                  overlay=overlay, batch_size=batch_size, progress=progress, echo=echo)
        return Prediction(paths, nuclei, None if view.assumed_mpp else view.slide_mpp, tissue_mm2)
    except DataError as exc:
        raise DataError(exc.path, f"{exc.problem}; {stop_message(out_dir, stem)}") from None
