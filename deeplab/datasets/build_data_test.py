import logging
import os

import numpy as np
import pytest
from PIL import Image

from deeplab.data import descriptors, schema
from deeplab.datasets import build_data
from deeplab.datasets import testing_utils as tu


def _pair(tmp_path, name="a", image=None, label=None, image_ext="png", rng=None):
    rng = rng or np.random.default_rng(0)
    image = tu.random_image(rng, 6, 8) if image is None else image
    label = tu.random_label(rng, 6, 8, 3) if label is None else label
    image_path = tu.save(image, str(tmp_path / "img" / f"{name}.{image_ext}"))
    label_path = tu.save(label, str(tmp_path / "lbl" / f"{name}.png"))
    return image_path, label_path


def test_make_pair_keeps_rgb_bytes_and_encodes_label(tmp_path):
    image_path, label_path = _pair(tmp_path, image_ext="jpg")
    pair = build_data.make_pair("a", image_path, label_path, num_classes=3, ignore_label=255)
    with open(image_path, "rb") as f:
        assert pair.image_data == f.read()
    assert (pair.image_format, pair.height, pair.width, pair.notes) == ("jpeg", 6, 8, ())
    label = np.asarray(Image.open(label_path))
    assert np.array_equal(np.asarray(Image.open(__import__("io").BytesIO(pair.label_data))),
                          label)


def test_size_mismatch_names_both_files(tmp_path):
    rng = np.random.default_rng(1)
    image_path, label_path = _pair(tmp_path, label=tu.random_label(rng, 5, 8, 3))
    with pytest.raises(build_data.InvalidPairError, match=r"lbl/a.png: label is 5x8 .* "
                       r"image .*img/a.png is 6x8"):
        build_data.make_pair("a", image_path, label_path, 3, 255)


def test_undecodable_image(tmp_path):
    _, label_path = _pair(tmp_path)
    bad = tmp_path / "img" / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(build_data.InvalidPairError, match=r"bad.jpg: cannot decode image"):
        build_data.make_pair("bad", str(bad), label_path, 3, 255)


def test_missing_image_file(tmp_path):
    _, label_path = _pair(tmp_path)
    with pytest.raises(build_data.InvalidPairError, match=r"nope.jpg: file not found"):
        build_data.make_pair("x", str(tmp_path / "nope.jpg"), label_path, 3, 255)


def test_label_value_out_of_range(tmp_path):
    label = np.zeros((6, 8), np.uint8)
    label[2, 3], label[0, 0], label[1, 1] = 7, 255, 2
    image_path, label_path = _pair(tmp_path, label=label)
    with pytest.raises(build_data.InvalidPairError,
                       match=r"lbl/a.png: label values 7 outside \[0, 3\) and not the ignore"):
        build_data.make_pair("a", image_path, label_path, 3, 255)
    # 255 alone is the ignore label and passes.
    label[2, 3] = 0
    tu.save(label, label_path)
    build_data.make_pair("a", image_path, label_path, 3, 255)


def test_colour_label_rejected(tmp_path):
    rng = np.random.default_rng(2)
    image_path, _ = _pair(tmp_path)
    label_path = tu.save(tu.random_image(rng, 6, 8), str(tmp_path / "lbl" / "rgb.png"))
    with pytest.raises(build_data.InvalidPairError, match=r"rgb.png: label is a RGB image"):
        build_data.make_pair("a", image_path, label_path, 3, 255)


def test_palette_label_read_by_index(tmp_path):
    rng = np.random.default_rng(3)
    label = tu.random_label(rng, 6, 8, 5, ignore=255)
    label_path = tu.save_palette_png(label, str(tmp_path / "lbl" / "p.png"))
    assert np.array_equal(build_data.read_label_image(label_path), label)


def _decoded(pair):
    import io

    return np.asarray(Image.open(io.BytesIO(pair.image_data)))


def test_grayscale_image_converted_to_rgb_with_note(tmp_path):
    gray = np.random.default_rng(4).integers(0, 256, (6, 8), dtype=np.uint8)
    image_path, label_path = _pair(tmp_path, image=gray)
    pair = build_data.make_pair("a", image_path, label_path, 3, 255)
    assert pair.image_format == "png" and "mode L converted to RGB" in pair.notes[0]
    assert np.array_equal(_decoded(pair), np.repeat(gray[..., None], 3, axis=2))


def test_rgba_image_drops_alpha_with_note(tmp_path):
    rgba = np.random.default_rng(5).integers(0, 256, (6, 8, 4), dtype=np.uint8)
    image_path, label_path = _pair(tmp_path, image=rgba)
    pair = build_data.make_pair("a", image_path, label_path, 3, 255)
    assert "alpha dropped" in pair.notes[0]
    assert np.array_equal(_decoded(pair), rgba[..., :3])


def test_16bit_png_image_rejected(tmp_path):
    deep = np.random.default_rng(6).integers(0, 65536, (6, 8), dtype=np.uint16)
    _, label_path = _pair(tmp_path)
    image_path = str(tmp_path / "img" / "deep.png")
    Image.fromarray(deep).save(image_path)
    with pytest.raises(build_data.InvalidPairError,
                       match=r"deep.png: 16-bit image .* convert it to 8-bit RGB first"):
        build_data.make_pair("deep", image_path, label_path, 3, 255)


def _items(tmp_path, count, bad=()):
    rng = np.random.default_rng(7)
    items = []
    for i in range(count):
        label = tu.random_label(rng, 6, 8, 3)
        if i in bad:
            label[0, 0] = 9
        items.append((f"im{i}",) + _pair(tmp_path, f"im{i}", label=label, rng=rng))
    return items


def _load(item):
    name, image, label = item
    return build_data.make_pair(name, image, label, 3, 255)


def _shard_files(directory):
    return sorted(n for n in os.listdir(directory) if n.endswith(".tfrecord"))


def test_write_split_shards_contiguously_and_deterministically(tmp_path):
    items = _items(tmp_path, 7)
    out_a, out_b = str(tmp_path / "a"), str(tmp_path / "b")
    result = build_data.write_split(out_a, "train", items, _load, 3, num_workers=3)
    build_data.write_split(out_b, "train", items, _load, 3, num_workers=1)
    assert result.written == 7 and result.skipped == 0
    names = _shard_files(out_a)
    assert names == [schema.shard_name("train", i, 3) for i in range(3)]
    assert names[0] == "train-00000-of-00003.tfrecord"
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    back = tu.read_back(out_a, "train")
    assert list(back) == [f"im{i}" for i in (0, 1, 2, 3, 4, 5, 6)]


def test_error_keeps_old_shards_and_leaves_no_temporaries(tmp_path):
    out = str(tmp_path / "out")
    build_data.write_split(out, "train", _items(tmp_path, 3), _load, 2)
    before = {n: (tmp_path / "out" / n).read_bytes() for n in os.listdir(out)}
    with pytest.raises(build_data.InvalidPairError, match=r"im4.png: label values 9"):
        build_data.write_split(out, "train", _items(tmp_path, 6, bad={4}), _load, 3)
    assert {n: (tmp_path / "out" / n).read_bytes() for n in os.listdir(out)} == before


def test_skip_invalid_logs_and_continues(tmp_path, caplog):
    out = str(tmp_path / "out")
    with caplog.at_level(logging.WARNING):
        result = build_data.write_split(out, "val", _items(tmp_path, 5, bad={1, 3}), _load, 2,
                                        skip_invalid=True)
    assert (result.written, result.skipped) == (3, 2)
    assert "im1.png: label values 9" in caplog.text
    assert sorted(tu.read_back(out, "val")) == ["im0", "im2", "im4"]


def test_rewrite_with_fewer_shards_removes_stale_ones(tmp_path):
    out = str(tmp_path / "out")
    items = _items(tmp_path, 4)
    build_data.write_split(out, "train", items, _load, 4)
    build_data.write_split(out, "train_aug", items, _load, 1)
    build_data.write_split(out, "train", items, _load, 2)
    assert _shard_files(out) == ["train-00000-of-00002.tfrecord", "train-00001-of-00002.tfrecord",
                                 "train_aug-00000-of-00001.tfrecord"]


def test_empty_split_is_an_error(tmp_path):
    with pytest.raises(build_data.ConversionError, match="split 'train' has no examples"):
        build_data.write_split(str(tmp_path), "train", [], _load, 2)


def test_split_file_missing_and_empty(tmp_path):
    with pytest.raises(build_data.ConversionError, match=r"train.txt: split file not found"):
        build_data.read_split_file(str(tmp_path / "train.txt"))
    (tmp_path / "val.txt").write_text("\n  \n")
    with pytest.raises(build_data.ConversionError, match=r"val.txt: split file lists no images"):
        build_data.read_split_file(str(tmp_path / "val.txt"))


def test_update_descriptor_merges_splits_and_refuses_other_dataset(tmp_path):
    base = descriptors.DatasetDescriptor("custom", 3, 255, {}, ("a", "b", "c"))
    build_data.update_descriptor(str(tmp_path), base, {"train": 5})
    merged = build_data.update_descriptor(str(tmp_path), base, {"val": 2})
    assert merged.splits == {"train": 5, "val": 2}
    assert descriptors.load_descriptor(str(tmp_path)) == merged
    other = descriptors.DatasetDescriptor("other", 4, 255, {})
    with pytest.raises(build_data.ConversionError, match="describes 3 classes"):
        build_data.update_descriptor(str(tmp_path), other, {"train": 1})


def test_split_that_leaves_the_last_shard_empty(tmp_path):
    out = str(tmp_path / "out")
    result = build_data.write_split(out, "trainval", _items(tmp_path, 6), _load, 4)
    assert result.written == 6
    assert _shard_files(out) == [schema.shard_name("trainval", i, 3) for i in range(3)]
    assert sorted(tu.read_back(out, "trainval")) == [f"im{i}" for i in range(6)]


def _dead_pid() -> int:
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_interrupted_replacement_is_finished_by_the_next_run(tmp_path, monkeypatch):
    from deeplab.datasets import shard_files

    out = str(tmp_path / "out")
    build_data.write_split(out, "train", _items(tmp_path, 4), _load, 2)
    real_replace, renamed = os.replace, []

    def dies_after_one_shard(src, dst):
        if os.path.basename(src).startswith(".tmp-") and renamed:
            raise KeyboardInterrupt  # the process is killed here
        renamed.extend([dst] if os.path.basename(src).startswith(".tmp-") else [])
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", dies_after_one_shard)
    with pytest.raises(KeyboardInterrupt):
        build_data.write_split(out, "train", _items(tmp_path, 4), _load, 4)
    monkeypatch.setattr(os, "replace", real_replace)
    from deeplab.data import pipeline

    with pytest.raises(ValueError, match=r"shards of 2 conversions \(-of-00002 and -of-00004"):
        pipeline.list_shards(out, "train")  # the reader never reads both sets
    # A temporary shard of another dead run, and the next conversion (of any split).
    (tmp_path / "out" / f".tmp-{_dead_pid()}-val-00000-of-00001.tfrecord").write_bytes(b"x")
    alive = shard_files._alive  # this process plays the dead converter of the journal
    monkeypatch.setattr(shard_files, "_alive", lambda pid: pid != os.getpid() and alive(pid))
    build_data.write_split(out, "val", _items(tmp_path, 1), _load, 1)
    assert sorted(os.listdir(out)) == [schema.shard_name("train", i, 4) for i in range(4)] + [
        "val-00000-of-00001.tfrecord"]
    assert sorted(tu.read_back(out, "train")) == [f"im{i}" for i in range(4)]


def test_output_options_are_checked(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(build_data.ConversionError, match=r"--output_dir: .*file is a file"):
        build_data.write_split(str(tmp_path / "file"), "train", _items(tmp_path, 1), _load, 1)
    with pytest.raises(build_data.ConversionError, match="--num_shards: must be at least 1"):
        build_data.write_split(str(tmp_path / "o"), "train", _items(tmp_path, 1), _load, 0)


def test_split_file_with_byte_order_mark(tmp_path):
    (tmp_path / "val.txt").write_bytes("\ufeff2007_000032\n2007_000039\n".encode())
    assert build_data.read_split_file(str(tmp_path / "val.txt")) == ["2007_000032",
                                                                     "2007_000039"]


def test_16bit_labels_accepted_when_values_fit_8_bits(tmp_path):
    image_path, _ = _pair(tmp_path)
    small = np.random.default_rng(8).integers(0, 3, (6, 8)).astype(np.uint16)
    small[0, 0] = 255
    Image.fromarray(small).save(tmp_path / "lbl" / "small16.png")
    assert Image.open(tmp_path / "lbl" / "small16.png").mode.startswith("I")
    pair = build_data.make_pair("a", image_path, str(tmp_path / "lbl" / "small16.png"), 3, 255)
    np.testing.assert_array_equal(np.asarray(Image.open(__import__("io").BytesIO(
        pair.label_data))), small)
    small[1, 1] = 300
    Image.fromarray(small).save(tmp_path / "lbl" / "big16.png")
    with pytest.raises(build_data.InvalidPairError,
                       match=r"big16.png: 16-bit label with values 0..300: they do not fit"):
        build_data.make_pair("a", image_path, str(tmp_path / "lbl" / "big16.png"), 3, 255)


def test_jpeg_label_rejected(tmp_path):
    image_path, _ = _pair(tmp_path)
    label = tu.save(np.zeros((6, 8), np.uint8), str(tmp_path / "lbl" / "j.jpg"))
    with pytest.raises(build_data.InvalidPairError, match=r"j.jpg: JPEG label"):
        build_data.make_pair("a", image_path, label, 3, 255)
