"""`predict DIR` (recursive) and `predict --from-list FILE`: which files a run reads (issue 33)."""
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from nuclei_tf.cli.main import cli
from nuclei_tf.data.errors import DataError
from nuclei_tf.inference.inputs import expand_inputs, folder_inputs, list_inputs
from nuclei_tf.inference import ModelBundle, save_bundle
from nuclei_tf.models import build_model


def png(path, shape=(40, 50)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(len(str(path))).integers(0, 256, (*shape, 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture
def cohort(tmp_path):
    root = tmp_path / "tiles"
    files = [png(root / "a.png"), png(root / "core" / "b.jpg"), png(root / "core" / "deep" / "c.tif")]
    png(root / "old" / "a2.overlay.png")  # predict's own outputs and a slide run's parts are not inputs
    png(root / "old" / "s.parts" / "strip.png")
    png(root / ".hidden.png")
    (root / "notes.txt").write_text("not an image")
    return root, files


def test_a_folder_is_searched_recursively_for_images_and_slides(cohort):
    root, files = cohort
    assert folder_inputs(root) == sorted(files)
    with pytest.raises(DataError, match="empty: holds no image or slide file"):
        folder_inputs((root.parent / "empty").mkdir() or root.parent / "empty")


def test_a_list_file_names_files_and_folders_relative_to_itself(cohort, tmp_path):
    root, files = cohort
    listing = tmp_path / "inputs.txt"
    listing.write_text(f"# a cohort\n\ntiles/core\n{files[0]}\n  tiles/a.png  \n")
    assert list_inputs(listing) == [root / "core", files[0], root / "a.png"]
    assert expand_inputs([], listing) == [files[1], files[2], files[0]]  # each file once, in order
    listing.write_text("tiles/a.png\ntiles/missing.png\n")
    with pytest.raises(DataError, match="inputs.txt: line 2: tiles/missing.png: no such file or folder"):
        list_inputs(listing)


def test_predict_on_a_folder_and_a_list_writes_every_image(cohort, tmp_path):
    root, files = cohort
    model = save_bundle(ModelBundle(build_model("unet_plus", base_filters=4, depth=3), tile=32), tmp_path / "model")
    result = CliRunner().invoke(cli, ["predict", str(root), "--model", str(model), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").glob("*.labels.tif")) == ["a.labels.tif", "b.labels.tif", "c.labels.tif"]
    (tmp_path / "list.txt").write_text("tiles/core/b.jpg\n")
    result = CliRunner().invoke(cli, ["predict", "--from-list", str(tmp_path / "list.txt"), "--model", str(model),
                                      "--out", str(tmp_path / "out2")])
    assert result.exit_code == 0 and [p.name for p in (tmp_path / "out2").glob("*.csv")] == ["b.csv"], result.output
    png(root / "other" / "a.png")  # two inputs named a.*: refused before any work
    clash = CliRunner().invoke(cli, ["predict", str(root), "--model", str(model), "--out", str(tmp_path / "out3")])
    assert clash.exit_code == 2 and "would both write a.*" in clash.output and not (tmp_path / "out3").exists()
    neither = CliRunner().invoke(cli, ["predict", "--out", str(tmp_path / "out4")])
    assert neither.exit_code == 2 and "give IMAGES (files or folders) or --from-list FILE" in neither.output


def test_the_next_image_is_read_while_this_one_is_predicted():
    import threading

    from nuclei_tf.inference.sources import read_ahead

    started = {i: threading.Event() for i in range(3)}

    def read(i):
        started[i].set()
        if i == 2:
            raise DataError(f"im{i}.png", "corrupt")
        return i * 10

    seen = []
    with pytest.raises(DataError, match="im2.png: corrupt"):
        for item, value in read_ahead(range(3), read):
            assert started[item + 1].wait(5), "the next item is read before this one is handed back"
            seen.append((item, value))
    assert seen == [(0, 0), (1, 10)]
