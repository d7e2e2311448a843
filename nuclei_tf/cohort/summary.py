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
    """``(mm^2 of tissue in the predicted region, level-0 um/px)`` of the image or slide at
    ``path``, on the thumbnail mask ``predict`` uses for slides (all of it with ``tissue=False``);
    ``(None, None)`` where no resolution is known."""
    from nuclei_tf.data.slide import open_slide, plausible_mpp
    from nuclei_tf.inference.wsi import THUMBNAIL
    from nuclei_tf.preprocess.tissue import TissueMap, region_tissue_mm2, tissue_mask

    with open_slide(path) as slide:
        mpp = mpp if mpp is not None else (slide.mpp if plausible_mpp(slide.mpp) else None)
        if mpp is None:
            return None, None
        width = slide.dimensions[0]
        tissue_map = None
        if tissue:
            mask = tissue_mask(slide.thumbnail(THUMBNAIL))
            tissue_map = TissueMap(mask, width / mask.shape[1])
        return region_tissue_mm2(roi or (0, 0, *slide.dimensions), mpp, tissue_map), mpp


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


def slide_summary(prediction, path, roi=None, tissue=True):
    """The measured columns of a slide's ``cohort.csv`` row from its
    :class:`~nuclei_tf.inference.predict_file.Prediction` (a slide's tissue area is the one its
    run measured; a plain image's is measured here)."""
    area, level0_mpp = prediction.tissue_mm2, prediction.mpp
    if area is None and level0_mpp is not None:
        area, _ = tissue_area_mm2(path, level0_mpp, roi, tissue)
    stats = nucleus_statistics(prediction.paths["csv"])
    density = stats["nuclei"] / area if area else None
    return {"mpp": level0_mpp, "tissue_mm2": None if area is None else round(area, 6),
            "nuclei_per_mm2": None if density is None else round(density, 3), **stats}
