"""Shared fixtures: the real data in ../shared/data (skipped when absent) and tiny synthetic datasets."""
import os
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("NUCLEI_TF_DATA", REPO.parent / "shared" / "data"))


def _real(sub):
    path = SHARED_DATA / sub
    if not path.is_dir():
        pytest.skip(f"real data not found at {path} (set NUCLEI_TF_DATA to the folder holding MoNuSeg/ and TNBC/)")
    return path


@pytest.fixture(autouse=True)
def float32_inference(monkeypatch):
    """Inference precision "auto" resolves to float32 in every test, whatever the CPU (it would be
    bfloat16 on CPUs with AVX512-BF16/AMX): exactness tests compare float32 results. Tests of
    bfloat16 ask for it, or patch the CPU flags, themselves."""
    from nuclei_tf.inference import precision

    monkeypatch.setattr(precision, "cpu_flags", lambda: set())


@pytest.fixture(scope="session")
def monuseg_root():
    return _real("MoNuSeg")


@pytest.fixture(scope="session")
def tnbc_root():
    return _real("TNBC")


def disk_instances(shape, centres, radius):
    """An int32 instance map with one disk per centre (ids 1..K)."""
    rows, cols = np.ogrid[: shape[0], : shape[1]]
    instances = np.zeros(shape, dtype=np.int32)
    for index, (r, c) in enumerate(centres, start=1):
        instances[(rows - r) ** 2 + (cols - c) ** 2 <= radius**2] = index
    return instances


def three_class_darkness_model():
    """A three-class model (background, interior, boundary) by darkness: a fixed 1x1 convolution +
    softmax, interior where the mean RGB is below 0.32, boundary up to 0.45, background above."""
    import keras

    inputs = keras.Input((None, None, 3))
    conv = keras.layers.Conv2D(3, 1, activation="softmax", name="probabilities")
    model = keras.Model(inputs, conv(inputs))
    conv.set_weights([np.tile(np.array([40.0, -40.0, 0.0]) / 3, (1, 1, 3, 1)), np.array([-18.0, 12.8, 0.0])])
    return model


def darkness_model():
    """A foreground model by darkness: a fixed 1x1 convolution + sigmoid, nucleus probability
    near 1 where the mean RGB is below 0.5 and near 0 above."""
    import keras

    inputs = keras.Input((None, None, 3))
    conv = keras.layers.Conv2D(1, 1, activation="sigmoid", name="probability")
    model = keras.Model(inputs, conv(inputs))
    conv.set_weights([np.full((1, 1, 3, 1), -20.0 / 3), np.array([10.0])])
    return model


def random_rgb(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(*shape, 3), dtype=np.uint8)


def region_xml(polygons):
    """Aperio-style XML with one Region per polygon (list of (x, y) vertices)."""
    regions = "".join(
        f'<Region Id="{i}"><Vertices>'
        + "".join(f'<Vertex X="{x}" Y="{y}"/>' for x, y in poly)
        + "</Vertices></Region>"
        for i, poly in enumerate(polygons, start=1)
    )
    return f'<Annotations><Annotation Id="1"><Regions>{regions}</Regions></Annotation></Annotations>'


def square(x0, y0, size):
    return [(x0, y0), (x0 + size, y0), (x0 + size, y0 + size), (x0, y0 + size)]


@pytest.fixture
def synthetic_monuseg(tmp_path):
    """Official MoNuSeg layout: 2 training images (XML; derived label) and 2 test images."""
    root = tmp_path / "MoNuSeg"
    train = root / "MoNuSeg 2018 Training Data"
    (train / "Tissue Images").mkdir(parents=True)
    (train / "Annotations").mkdir()
    (root / "MoNuSegTestData").mkdir()
    (root / "derived-instance-labels").mkdir()
    shape = (64, 64)
    tifffile.imwrite(train / "Tissue Images" / "TCGA-A7-A13E-01Z-00-DX1.tif", random_rgb(shape, 1), compression="lzw")
    (train / "Annotations" / "TCGA-A7-A13E-01Z-00-DX1.xml").write_text(
        region_xml([square(5, 5, 10), square(30, 30, 12), [(1, 1), (2, 2)]])
    )
    tifffile.imwrite(train / "Tissue Images" / "TCGA-B0-5698-01Z-00-DX1.tif", random_rgb(shape, 2))
    Image.fromarray(disk_instances(shape, [(20, 20), (40, 45)], 6).astype(np.uint16)).save(
        root / "derived-instance-labels" / "TCGA-B0-5698-01Z-00-DX1.png"
    )
    for name, seed in (("TCGA-AC-A2FO-01A-01-TS1", 3), ("TCGA-2Z-A9J9-01A-01-TS1", 4)):
        tifffile.imwrite(root / "MoNuSegTestData" / f"{name}.tif", random_rgb(shape, seed))
        (root / "MoNuSegTestData" / f"{name}.xml").write_text(region_xml([square(10, 10, 8)]))
    return root


@pytest.fixture
def synthetic_tnbc(tmp_path):
    """Official TNBC layout: 3 patients, RGBA and RGB slides, binary 0/255 masks."""
    root = tmp_path / "TNBC_NucleiSegmentation"
    for patient, n_images in (("01", 2), ("02", 1), ("03", 1)):
        (root / f"Slide_{patient}").mkdir(parents=True)
        (root / f"GT_{patient}").mkdir()
        for k in range(1, n_images + 1):
            rgba = np.dstack([random_rgb((32, 32), k), np.full((32, 32), 255, np.uint8)])
            Image.fromarray(rgba if k % 2 else rgba[..., :3]).save(root / f"Slide_{patient}" / f"{patient}_{k}.png")
            mask = (disk_instances((32, 32), [(8, 8), (22, 22)], 4) > 0).astype(np.uint8) * 255
            Image.fromarray(mask).save(root / f"GT_{patient}" / f"{patient}_{k}.png")
    return tmp_path


@pytest.fixture
def synthetic_dsb(tmp_path):
    """DSB-2018 stage-1 layout: 4 grey-scale RGBA images and 1 colour image, one PNG per nucleus."""
    root = tmp_path / "stage1_train"
    for index in range(5):
        entry = root / f"img{index:02d}"
        (entry / "images").mkdir(parents=True)
        (entry / "masks").mkdir()
        grey = np.random.default_rng(index).integers(0, 256, (32, 32), dtype=np.uint8)
        rgb = random_rgb((32, 32), index) if index == 4 else np.dstack([grey] * 3)
        Image.fromarray(np.dstack([rgb, np.full((32, 32), 255, np.uint8)])).save(entry / "images" / f"img{index:02d}.png")
        for m, centre in enumerate([(8, 8), (20, 22)]):
            mask = (disk_instances((32, 32), [centre], 4) > 0).astype(np.uint8) * 255
            Image.fromarray(mask).save(entry / "masks" / f"m{m}.png")
    return root


@pytest.fixture
def synthetic_folder(tmp_path):
    """Generic layout: images/ + labels/ matched by stem."""
    root = tmp_path / "own"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for stem in ("a", "b"):
        Image.fromarray(random_rgb((32, 32))).save(root / "images" / f"{stem}.png")
        tifffile.imwrite(root / "labels" / f"{stem}.tif", disk_instances((32, 32), [(10, 10)], 5) * 7)
    return root


@pytest.fixture(scope="session")
def dsb_root():
    """The DSB 2018 stage-1 download: stage1_train/, stage1_test/ and their run-length CSVs."""
    return _real("DSB2018")


def write_dsb_stage(stage, images, masks=True, csv_path=None, solution=False):
    """Write a DSB stage folder: ``images`` maps id -> (image array, int instance map).

    ``masks``: one 0/255 PNG per nucleus (``<id>/masks/<id>_<kk>.png``); ``csv_path``: the
    same nuclei as run-length rows, with Height/Width/Usage when ``solution``.
    """
    from nuclei_tf.data.rle import encode

    rows = ["ImageId,EncodedPixels" + (",Height,Width,Usage" if solution else "")]
    for image_id, (image, instances) in images.items():
        entry = stage / image_id
        (entry / "images").mkdir(parents=True)
        Image.fromarray(image).save(entry / "images" / f"{image_id}.png")
        if masks:
            (entry / "masks").mkdir()
        for k in range(1, int(instances.max()) + 1):
            if masks:
                Image.fromarray((instances == k).astype(np.uint8) * 255).save(entry / "masks" / f"{image_id}_{k:02d}.png")
            size = f",{instances.shape[0]},{instances.shape[1]},Public" if solution else ""
            rows.append(f"{image_id},{encode(instances == k)}{size}")
    if csv_path is not None:
        csv_path.write_text("\n".join(rows) + "\n")


def dsb_images(prefix, n_grey, n_colour, seed=0):
    """id -> (image, instance map): grey images stored as 8-bit grey, then RGB colour ones; 1-4 disks each."""
    rng = np.random.default_rng(seed)
    images = {}
    for index in range(n_grey + n_colour):
        shape = (24 + 4 * (index % 3), 32)
        centres = [(6 + 12 * (k // 2), 8 + 14 * (k % 2)) for k in range(1 + index % 4)]
        grey = rng.integers(0, 256, shape, dtype=np.uint8)
        image = grey if index < n_grey else random_rgb(shape, index)
        images[f"{prefix}{index:02d}"] = (image, disk_instances(shape, centres, 4))
    return images


@pytest.fixture
def synthetic_dsb_download(tmp_path):
    """The Kaggle download: stage1_train (labels only in the CSV, 5 grey + 1 colour) and
    stage1_test (masks and stage1_solution.csv, 3 grey + 1 colour)."""
    root = tmp_path / "DSB2018"
    write_dsb_stage(root / "stage1_train", dsb_images("tr", 5, 1), masks=False, csv_path=root / "stage1_train_labels.csv")
    write_dsb_stage(root / "stage1_test", dsb_images("te", 3, 1, seed=1), csv_path=root / "stage1_solution.csv", solution=True)
    return root
