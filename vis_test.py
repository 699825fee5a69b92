"""vis.py end to end: pictures per image, and raw predictions equal predict.py's labels."""

from __future__ import annotations

import numpy as np
from PIL import Image

from eval_test import NUM_VAL, finish, start, tiny_run  # noqa: F401 (tiny_run is a fixture)


def read(path):
    with Image.open(path) as image:
        return np.asarray(image)


def test_vis_pictures_and_raw_predictions_equal_predict_py(tiny_run, tmp_path):  # noqa: F811
    from deeplab.datasets.synthetic import generate_example

    image, _ = generate_example(1, "val", (40, 56))
    Image.fromarray(image).save(tmp_path / "val_00001.png")
    vis = start("vis.py", f"--checkpoint_dir={tiny_run['train']}",
                f"--vis_logdir={tmp_path / 'vis'}", f"--dataset_dir={tiny_run['data']}",
                "--vis_crop_size=", "--also_save_raw_predictions",
                "--max_number_of_iterations=1")
    predict = start("predict.py", f"--checkpoint={tiny_run['train']}",
                    f"--output_dir={tmp_path / 'predict'}", str(tmp_path / "val_00001.png"))
    for process in (vis, predict):
        code, out, err = finish(process)
        assert code == 0, err
    pictures = sorted(p.name for p in (tmp_path / "vis" / "segmentation_results").iterdir())
    assert pictures == sorted(f"val_{i:05d}_{kind}.png" for i in range(NUM_VAL)
                              for kind in ("image", "prediction", "overlay", "label"))
    raw = read(tmp_path / "vis" / "raw_segmentation_results" / "val_00001.png")
    assert len(np.unique(raw)) > 1  # a model whose labels vary, so equality means something
    np.testing.assert_array_equal(raw, read(tmp_path / "predict" / "val_00001.png"))
    np.testing.assert_array_equal(
        read(tmp_path / "vis" / "segmentation_results" / "val_00001_image.png"), image)


def test_vis_runs_an_exported_model_as_the_python_api_does(tiny_run, tmp_path):  # noqa: F811
    import deeplab
    from deeplab.datasets.synthetic import generate_example

    exported = tmp_path / "exported"
    deeplab.load(tiny_run["train"]).export(str(exported), formats="frozen", crop_size=(40, 56),
                                           log=lambda _: None)
    code, out, err = finish(start(
        "vis.py", f"--model={exported}", f"--vis_logdir={tmp_path / 'vis'}",
        f"--dataset_dir={tiny_run['data']}", "--vis_crop_size=", "--also_save_raw_predictions"))
    assert code == 0, err
    assert f"{exported / 'frozen_inference_graph.pb'}: wrote pictures of {NUM_VAL} image(s)" in out
    raw = read(tmp_path / "vis" / "raw_segmentation_results" / "val_00001.png")
    image, _ = generate_example(1, "val", (40, 56))
    expected = deeplab.load(str(exported)).predict(image)
    assert len(np.unique(expected)) > 1
    np.testing.assert_array_equal(raw, expected)
