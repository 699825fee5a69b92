"""The assembled DeepLabv3 / DeepLabv3+ network: backbone, head, decoder, logits.

`build_model(options)` returns a Keras model from raw pixels [B, H, W, 3] (float, 0..255;
H and W may be unknown) to float32 logits at the decoder stride or, without a decoder, at
the output stride; sizes follow `scale_dimension(d, 1 / stride) = (d - 1) // stride + 1`.
Upsampling to the image size belongs to `deeplab.model.predict`. The parts come from
registries: the backbone from `backbones` (by model_variant), the head from `heads` (the
first registered head whose `applies(options)` holds: the Dense Prediction Cell, none, ASPP).
"""

from __future__ import annotations

import keras

from deeplab.model import backbones, decoder, heads, quantize
from deeplab.model.backbone_spec import OUTPUT
from deeplab.model.layers import LOGITS_STDDEV, NormSpec, Preprocess, conv_norm_act
from deeplab.model.options import ModelOptions

HEAD_EPSILON = 1e-5  # ASPP, DPC, image pooling and decoder (the fused kernel computes 1.001e-5)
LOGITS_SCOPE = "logits/semantic"


def head_norm(options: ModelOptions, sync_batch_norm: bool = False) -> NormSpec:
    """Normalisation of ASPP / DPC, image pooling, concat projection and decoder."""
    return NormSpec(epsilon=HEAD_EPSILON, decay=options.head_batch_norm_decay,
                    kind=options.normalization, groups=options.group_norm_groups,
                    sync=sync_batch_norm)


def backbone_norm(options: ModelOptions, sync_batch_norm: bool = False) -> NormSpec:
    """Normalisation of the backbone: its family's epsilon and decay."""
    spec = backbones.get_backbone(options.model_variant)
    return NormSpec(epsilon=spec.norm_epsilon, decay=spec.norm_decay,
                    kind=options.normalization, groups=options.group_norm_groups,
                    sync=sync_batch_norm)


def build_model(options: ModelOptions, name: str | None = None, *,
                sync_batch_norm: bool = False) -> keras.Model:
    """The DeepLab network for `options`; see the module docstring for shapes and units.

    sync_batch_norm: BatchNorm statistics all-reduced across replicas while training (a
    training choice: it changes no weight, so checkpoints are interchangeable).
    """
    spec = backbones.get_backbone(options.model_variant)
    spec.check_output_stride(options.model_variant, options.output_stride)
    images = keras.Input(shape=(None, None, 3), dtype="float32", name="images")
    x = Preprocess(spec.preprocessing(options.model_variant), name="preprocess")(images)
    features = spec.build(x, options, backbone_norm(options, sync_batch_norm))
    norm = head_norm(options, sync_batch_norm)
    x = features[OUTPUT]
    x = heads.build_head(x, options, norm)
    if options.decoder_output_stride is not None:
        x = decoder.build(x, decoder.low_level_feature(features, options), options, norm)
    if options.decoder_output_is_logits:
        logits = x
    else:
        logits = conv_norm_act(x, options.num_classes, options.logits_kernel_size,
                               LOGITS_SCOPE, None, activation=None, dtype="float32",
                               init_stddev=LOGITS_STDDEV)
    model = keras.Model(images, logits, name=name or f"deeplab_{options.model_variant}")
    if options.quantize_delay_step >= 0:
        quantize.attach(model)  # always on; the trainer gates it by step
    return model
