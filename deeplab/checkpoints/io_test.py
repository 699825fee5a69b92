"""Name-based checkpoint import: both formats, exclusions, and the errors users see."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest
import tensorflow as tf

from deeplab.checkpoints import io
from deeplab.model.deeplab import build_model
from deeplab.model.options import ModelOptions

OPTIONS = ModelOptions(model_variant="mobilenet_v2", depth_multiplier=0.5, num_classes=5,
                       atrous_rates=(2,), aspp_convs_filters=8, decoder_output_stride=4,
                       decoder_filters=8)


@pytest.fixture(scope="module")
def model():
    return build_model(OPTIONS)


def write_tf1_checkpoint(values: dict, folder) -> str:
    """A name-based TF1 checkpoint as tf.compat.v1.train.Saver writes it, plus slots."""
    with tf.Graph().as_default():
        variables = {k: tf.compat.v1.Variable(v, name=k) for k, v in values.items()}
        saver = tf.compat.v1.train.Saver(var_list=variables)
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            return saver.save(sess, str(folder / "model.ckpt"), write_meta_graph=False)


def random_values(model, seed=0, **overrides):
    rng = np.random.default_rng(seed)
    values = {n: rng.standard_normal(v.shape).astype(np.float32)
              for n, v in io.variable_map(model).items()}
    values.update(overrides)
    return values


def test_names_follow_the_original_scopes(model):
    names = io.variable_map(model)
    assert "MobilenetV2/Conv/weights" in names
    assert "MobilenetV2/expanded_conv_16/depthwise/depthwise_weights" in names
    assert "aspp1_depthwise/BatchNorm/moving_variance" in names
    assert "decoder/feature_projection0/BatchNorm/gamma" in names
    assert names[io.LOGITS_WEIGHTS].shape == (1, 1, 8, 5)
    assert sum(int(np.prod(v.shape)) for v in names.values()) == model.count_params()


def test_tf1_checkpoint_fills_every_variable_and_skips_slots(model, tmp_path):
    values = random_values(model)
    extra = {"global_step": np.int64(7), io.LOGITS_WEIGHTS + "/Momentum":
             np.zeros((1, 1, 8, 5), np.float32)}
    prefix = write_tf1_checkpoint({**values, **extra}, tmp_path)
    report = io.restore_model(model, str(tmp_path), allow_unused=False)
    assert not report.missing and not report.unused and len(report.loaded) == len(values)
    for name, var in io.variable_map(model).items():
        np.testing.assert_array_equal(var.numpy(), values[name])
    assert io.checkpoint_num_classes(prefix) == 5


def test_our_checkpoint_round_trips_by_name(model, tmp_path):
    before = {n: v.numpy().copy() for n, v in io.variable_map(model).items()}
    prefix = io.model_checkpoint(model, step=tf.Variable(3, dtype=tf.int64)).save(
        str(tmp_path / "ckpt"))
    other = build_model(OPTIONS)
    report = io.restore_model(other, prefix, allow_unused=False)
    assert len(report.loaded) == len(before)
    for name, var in io.variable_map(other).items():
        np.testing.assert_array_equal(var.numpy(), before[name])
    assert io.resolve_checkpoint(str(tmp_path)) == prefix
    assert io.checkpoint_num_classes(str(tmp_path)) == 5


def test_other_class_count_lists_shapes_and_assigns_nothing(model, tmp_path):
    values = random_values(model, **{io.LOGITS_WEIGHTS: np.zeros((1, 1, 8, 21), np.float32),
                                     io.LOGITS_BIASES: np.zeros((21,), np.float32)})
    write_tf1_checkpoint(values, tmp_path)
    target = build_model(OPTIONS)
    kernel = io.variable_map(target)["aspp0/weights"].numpy().copy()
    with pytest.raises(io.CheckpointError) as error:
        io.restore_model(target, str(tmp_path))
    message = str(error.value)
    assert "logits/semantic/weights [1, 1, 8, 5] vs [1, 1, 8, 21]" in message
    assert "logits/semantic/biases [5] vs [21]" in message
    np.testing.assert_array_equal(io.variable_map(target)["aspp0/weights"].numpy(), kernel)
    # The original's initialize_last_layer=False: the logits stay as initialised.
    report = io.restore_model(target, str(tmp_path), exclude_scopes=("logits",))
    assert report.excluded == [io.LOGITS_WEIGHTS, io.LOGITS_BIASES]


def test_other_variant_is_one_error_naming_both_sides(tmp_path):
    small = build_model(OPTIONS.replace(model_variant="xception_41"))
    write_tf1_checkpoint(random_values(small), tmp_path)
    with pytest.raises(io.CheckpointError) as error:
        io.restore_model(build_model(OPTIONS), str(tmp_path))
    message = str(error.value)
    assert "model variables not in the checkpoint" in message
    assert "MobilenetV2/Conv/weights [3, 3, 3, 16]" in message
    assert "the model has scope(s) MobilenetV2, the checkpoint xception_41" in message
    assert "... and" in message


def test_missing_checkpoints_name_the_path(tmp_path):
    with pytest.raises(io.CheckpointError, match="holds no checkpoint"):
        io.resolve_checkpoint(str(tmp_path))
    with pytest.raises(io.CheckpointError, match="does not exist"):
        io.resolve_checkpoint(str(tmp_path / "model.ckpt-5"))
    (tmp_path / "bad.index").write_bytes(b"not a checkpoint")
    with pytest.raises(io.CheckpointError, match="not a readable checkpoint"):
        io.checkpoint_entries(str(tmp_path / "bad"))


def _damage(data_file, how):
    """Truncates `data_file` to half its size, or flips one bit in the middle."""
    raw = bytearray(open(data_file, "rb").read())
    if how == "truncated":
        raw = raw[: len(raw) // 2]
    else:
        raw[len(raw) // 2] ^= 0x10
    open(data_file, "wb").write(bytes(raw))


@pytest.mark.parametrize("how, reason", [("truncated", "the data file is truncated"),
                                         ("bit-flipped", "fail the stored CRC32C checksum")])
def test_damaged_data_file_is_one_error_naming_file_and_variable(model, tmp_path, how, reason):
    prefix = write_tf1_checkpoint(random_values(model, seed=3), tmp_path)
    data_file = prefix + ".data-00000-of-00001"
    _damage(data_file, how)
    target = build_model(OPTIONS)
    before = {n: v.numpy().copy() for n, v in io.variable_map(target).items()}
    with pytest.raises(io.CheckpointError) as error:
        io.restore_model(target, prefix)
    message = str(error.value)
    assert message.startswith(f"{data_file}: variable ") and reason in message, message
    assert "\n" not in message
    name = message.split("variable ")[1].split(" is damaged")[0]
    assert name in io.variable_map(target)
    for n, v in io.variable_map(target).items():  # nothing assigned
        np.testing.assert_array_equal(v.numpy(), before[n])
    with pytest.raises(io.CheckpointError, match=reason):
        io.verify_checkpoint(prefix)


def test_damaged_optimizer_slots_are_reported_though_the_weights_load(model, tmp_path,
                                                                      caplog):
    # The slot is written last, so truncating the file's tail damages only the slot.
    values = random_values(model)
    slot = "zz_slot/Momentum"
    prefix = write_tf1_checkpoint({**values, slot: np.ones((4096,), np.float32)}, tmp_path)
    reader = tf.train.load_checkpoint(prefix)
    data_file = prefix + ".data-00000-of-00001"
    with open(data_file, "r+b") as f:
        f.truncate(os.path.getsize(data_file) - 8)
    assert reader.get_variable_to_shape_map()[slot] == [4096]
    with caplog.at_level(logging.WARNING):
        io.restore_model(build_model(OPTIONS), prefix)  # the model's tensors are intact
    assert f"{data_file}: variable {slot} is damaged" in caplog.text
    with pytest.raises(io.CheckpointError, match=f"variable {slot} is damaged"):
        io.verify_checkpoint(prefix)


def test_other_class_count_says_how_many_classes_the_checkpoint_has(model, tmp_path):
    values = random_values(model, **{io.LOGITS_WEIGHTS: np.zeros((1, 1, 8, 6), np.float32),
                                     io.LOGITS_BIASES: np.zeros((6,), np.float32)})
    write_tf1_checkpoint(values, tmp_path)
    with pytest.raises(io.CheckpointError,
                       match="the checkpoint's logits have 6 classes, the model 5"):
        io.restore_model(build_model(OPTIONS), str(tmp_path))


def test_partial_save_paths_and_stale_temporaries(tmp_path):
    prefix = str(tmp_path / "model.ckpt-7")
    (tmp_path / "model.ckpt-7_temp").mkdir()
    (tmp_path / "model.ckpt-7_temp" / "part-00000-of-00001.data-00000-of-00001").write_bytes(b"x")
    for name in ("model.ckpt-7.index", "model.ckpt-7.data-00000-of-00001",
                 "checkpoint.tmp1234", "model.ckpt-5.index", "checkpoint"):
        (tmp_path / name).write_bytes(b"x")
    assert io.stale_temporaries(str(tmp_path)) == [str(tmp_path / "checkpoint.tmp1234"),
                                                   prefix + "_temp"]
    removed = io.remove_paths(io.partial_save_paths(prefix))
    assert len(removed) == 4
    assert sorted(os.listdir(tmp_path)) == ["checkpoint", "model.ckpt-5.index"]
