"""What a cohort reports per slide: tissue area, nucleus density and the distribution (median,
interquartile range) of each nucleus measurement of the slide's ``<id>.csv``."""
import csv

import numpy as np

#: the nucleus table's measurements summarised per slide (um ones; their pixel twins add nothing)
SUMMARISED = ("area_um2", "perimeter_um", "circularity", "hematoxylin_od")
#: one row of ``cohort.csv``
COHORT_COLUMNS = ("id", "path", "status", "model", "mpp", "tissue_mm2", "nuclei", "nuclei_per_mm2",
                  *(f"{name}_{stat}" for name in SUMMARISED for stat in ("median", "iqr")), "seconds", "worker")


def tissue_area_mm2(path, mpp=None, roi=None, tissue=True):
    """``(mm^2 of tissue in the predicted region, level-0 um/px)`` of the slide at ``path``: the
    region's area times its tissue fraction on the same thumbnail mask ``predict`` uses (all of it
    with ``tissue=False``); ``(None, None)`` where no resolution is known."""
    from nuclei_tf.data.slide import open_slide, plausible_mpp
    from nuclei_tf.inference.wsi import THUMBNAIL
    from nuclei_tf.preprocess.tissue import TissueMap, tissue_mask

    with open_slide(path) as slide:
        mpp = mpp if mpp is not None else (slide.mpp if plausible_mpp(slide.mpp) else None)
        width, height = slide.dimensions
        x, y, w, h = roi or (0, 0, width, height)
        fraction = 1.0
        if tissue:
            mask = tissue_mask(slide.thumbnail(THUMBNAIL))
            fraction = TissueMap(mask, width / mask.shape[1]).fraction(x, y, w, h)
    if mpp is None:
        return None, None
    return w * h * fraction * mpp**2 / 1e6, mpp


def nucleus_statistics(table_path):
    """``{nuclei, <measurement>_median, <measurement>_iqr}`` of a nucleus table (empty cells,
    a slide of unknown resolution's um columns, left out)."""
    values = {name: [] for name in SUMMARISED}
    count = 0
    with open(table_path, newline="") as handle:
        for row in csv.DictReader(handle):
            count += 1
            for name in SUMMARISED:
                if row[name]:
                    values[name].append(float(row[name]))
    stats = {"nuclei": count}
    for name, column in values.items():
        if column:
            q1, median, q3 = np.percentile(column, [25, 50, 75])
            stats[f"{name}_median"], stats[f"{name}_iqr"] = round(float(median), 6), round(float(q3 - q1), 6)
        else:
            stats[f"{name}_median"] = stats[f"{name}_iqr"] = None
    return stats


def slide_summary(table_path, path, mpp=None, roi=None, tissue=True):
    """The measured columns of a slide's ``cohort.csv`` row."""
    area, level0_mpp = tissue_area_mm2(path, mpp, roi, tissue)
    stats = nucleus_statistics(table_path)
    density = stats["nuclei"] / area if area else None
    return {"mpp": level0_mpp, "tissue_mm2": None if area is None else round(area, 6),
            "nuclei_per_mm2": None if density is None else round(density, 3), **stats}
