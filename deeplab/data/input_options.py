"""InputOptions: the input pipeline's settings, without TensorFlow (flags read their
defaults and help from these fields; `deeplab.data.pipeline` applies them)."""

from __future__ import annotations

import dataclasses

from deeplab.utils.option_fields import option

# flag groups (deeplab.flags defines each where its entry points need it)
AUGMENT = "augment"  # train.py
RESIZE = "resize"  # train.py, eval.py, vis.py
RECORDS = "records"  # train.py, eval.py, vis.py


@dataclasses.dataclass(frozen=True)
class InputOptions:
    """Preprocessing settings (names and defaults of the original's flags).

    Attributes:
      crop_size: (height, width) of training crops and of eval padding, in pixels; None in
        eval keeps every image whole (batch size 1).
      min_scale_factor, max_scale_factor, scale_factor_step_size: training random scale,
        one of min, min + step, ..., max (uniform in [min, max) when the step is 0).
      min_resize_value, max_resize_value, resize_factor, keep_aspect_ratio: optional resize
        of every image (training and eval) before augmentation, as the original's
        resize_to_range; off when both values are None.
      ignore_label: label value of padding (255 for VOC/Cityscapes, 0 for ADE20K).
      mean_pixel: RGB value (0..255) images are padded with: 127.5 for models that map pixels
        to [-1, 1] (xception, mobilenet, resnet `_beta`), (123.15, 115.90, 103.06) for plain
        resnet_v1 (mean subtraction): either way the padding preprocesses to zero.
      flip: random left-right flip in training (probability 0.5).
      shuffle_buffer_size: examples in the training shuffle buffer.
      skip_damaged_records: scan every record first (`record_scan.scan_split`: framing,
        CRC, decoding) and read only the intact ones; each damaged one is named once in a
        warning. False: a damaged record stops reading with tf.errors.DataLossError or
        InvalidArgumentError (`record_scan.locate_damage` names it).
    """

    crop_size: tuple[int, int] | None = (513, 513)
    min_scale_factor: float = option(0.5, "float", "Smallest random scale.", group=AUGMENT)
    max_scale_factor: float = option(2.0, "float", "Largest random scale.", group=AUGMENT)
    scale_factor_step_size: float = option(0.25, "float", "Random scale step.", group=AUGMENT)
    min_resize_value: int | None = option(
        None, "integer", "Resize images so the shorter side is this.", group=RESIZE)
    max_resize_value: int | None = option(
        None, "integer", "Cap on the longer side after resizing.", group=RESIZE)
    resize_factor: int | None = option(
        None, "integer", "Resized sizes are multiples of this plus one.", group=RESIZE)
    keep_aspect_ratio: bool = option(True, "boolean", "Keep the aspect ratio when resizing.",
                                     group=RESIZE)
    ignore_label: int = 255
    mean_pixel: tuple[float, float, float] = (127.5, 127.5, 127.5)
    flip: bool = True
    shuffle_buffer_size: int = 512
    skip_damaged_records: bool = option(
        False, "boolean", "Scan the split's records first and leave out damaged ones (CRC "
        "mismatch, cut shard, undecodable image or label), each named once and counted; "
        "without it a damaged record stops the run, named.", group=RECORDS)

    def __post_init__(self):
        if self.crop_size is not None:
            crop = tuple(int(v) for v in self.crop_size)
            if len(crop) != 2 or min(crop) < 1:
                raise ValueError(f"crop_size must be (height, width) > 0, got {self.crop_size}")
            object.__setattr__(self, "crop_size", crop)
        object.__setattr__(self, "mean_pixel", tuple(float(v) for v in self.mean_pixel))
        if len(self.mean_pixel) != 3:
            raise ValueError(f"mean_pixel needs 3 values (RGB), got {self.mean_pixel}")
        if not 0 <= self.min_scale_factor <= self.max_scale_factor:
            raise ValueError(f"need 0 <= min_scale_factor <= max_scale_factor, got "
                             f"{self.min_scale_factor}, {self.max_scale_factor}")
        if self.scale_factor_step_size < 0:
            raise ValueError("scale_factor_step_size must be >= 0")
