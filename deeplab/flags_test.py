"""Model flags of the original that became supported: parsed into ModelOptions."""

from __future__ import annotations

import pytest
from absl import flags

from deeplab import flags as deeplab_flags


def _options(*argv):
    fv = flags.FlagValues()
    deeplab_flags.define_model_flags(fv)
    fv(["prog", *argv])
    return deeplab_flags.model_options_from_flags(fv, num_classes=3)


def test_bounded_activation_and_label_upsampling_flags_reach_the_options():
    default = _options()
    assert not default.use_bounded_activation and default.prediction_with_upsampled_logits
    given = _options("--use_bounded_activation", "--noprediction_with_upsampled_logits",
                     "--model_variant=resnet_v1_18", "--multi_grid=1", "--multi_grid=2")
    assert given.use_bounded_activation and not given.prediction_with_upsampled_logits
    assert given.multi_grid == (1, 2)


def test_nas_flags_reach_the_options():
    given = _options("--model_variant=nas_hnasnet", "--output_stride=8",
                     "--nas_stem_output_num_conv_filters=8", "--nas_use_classification_head",
                     "--nas_remove_os32_stride", "--drop_path_keep_prob=0.7")
    assert (given.nas_stem_output_num_conv_filters, given.nas_use_classification_head,
            given.nas_remove_os32_stride, given.drop_path_keep_prob) == (8, True, True, 0.7)


def test_readme_flag_tables_are_generated_from_the_option_fields():
    """README.md's flag tables are what the fields declare (python -m deeplab.flags
    README.md rewrites them)."""
    import os

    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")
    text = open(path, encoding="utf-8").read()
    for name, table in deeplab_flags.readme_tables().items():
        begin, end = deeplab_flags.TABLE_BEGIN.format(name), deeplab_flags.TABLE_END.format(name)
        assert text.split(begin, 1)[1].split(end, 1)[0].strip() == table, name
    assert "| `--min_resize_value` | integer | unset |" in text


def test_quantize_delay_step_is_a_real_flag_listed_in_help():
    assert deeplab_flags.UNSUPPORTED_DEFAULTS == {}
    assert _options().quantize_delay_step == -1
    assert _options("--quantize_delay_step=500").quantize_delay_step == 500
    fv = flags.FlagValues()
    deeplab_flags.define_model_flags(fv)
    assert "--quantize_delay_step" in fv.get_help()
    assert "only its default is supported" not in fv.get_help()


@pytest.mark.parametrize("argv", [["--crop_size=257,321"], ["--crop_size=257", "--crop_size=321"]])
def test_size_flags_take_height_comma_width_or_two_repeated_flags(argv):
    from absl import flags as absl_flags

    from deeplab.flags import pair_flag

    fv = absl_flags.FlagValues()
    absl_flags.DEFINE_multi_string("crop_size", ["513", "513"], "size", flag_values=fv)
    fv(["prog", *argv])
    assert pair_flag(fv, "crop_size") == (257, 321)
    fv(["prog", "--crop_size=257,321,5"])
    with pytest.raises(absl_flags.ValidationError, match="must be height,width"):
        pair_flag(fv, "crop_size")
