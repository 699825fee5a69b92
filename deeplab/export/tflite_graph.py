"""Edits of a converted TFLite flatbuffer that keep XNNPACK's INT8 partition whole.

XNNPACK (TFLite's CPU delegate) runs a quantised RELU / RELU6 only when the converter fused
it into the op before (CONV_2D, ADD, ... with a fused activation). A ReLU whose input also
feeds another op cannot be fused: Xception's `relu(residual sum)` before every unit (the sum
feeds the next residual too), the ReLU of the entry-flow feature the decoder also reads.
Such a standalone int8 RELU is not delegated: it runs in TFLite's own kernel and splits the
delegated graph around it (xception65 at 513: 20 of them, 24 partitions; rewriting them took
~45 % off the INT8 forward's time, see bench/README.md, "INT8 engines").

`delegate_int8_activations` replaces each by the same function in an op XNNPACK does run:
a 1x1 depthwise convolution with weight 1 (int8 127 at scale 1/127 per channel), bias 0,
the ReLU as its fused activation, writing the ReLU's output tensor with its quantisation.
The requantisation is the one TFLite's RELU kernel applies, so outputs are bit-identical.
"""

from __future__ import annotations

import collections

import numpy as np
from tensorflow.lite.python import schema_py_generated as schema
from tensorflow.lite.tools import flatbuffer_utils

_OPS = schema.BuiltinOperator
_ACTIVATIONS = {_OPS.RELU: schema.ActivationFunctionType.RELU,
                _OPS.RELU6: schema.ActivationFunctionType.RELU6}
_NAMES = {value: name for name, value in vars(_OPS).items() if not name.startswith("_")}


def _builtin_code(code) -> int:
    """The op code of an OperatorCode (new models keep codes >= 127 in `builtinCode`)."""
    return max(code.builtinCode, code.deprecatedBuiltinCode)


def op_name(model, op) -> str:
    """The builtin name ("CONV_2D", "RELU", ...) of an op of a model object."""
    return _NAMES.get(_builtin_code(model.operatorCodes[op.opcodeIndex]), "CUSTOM")


def op_counts(flatbuffer: bytes) -> collections.Counter:
    """{op name: count} of the main subgraph, e.g. {"CONV_2D": 79, "RELU": 20}."""
    model = flatbuffer_utils.read_model_from_bytearray(flatbuffer)
    return collections.Counter(op_name(model, op) for op in model.subgraphs[0].operators)


class _Editor:
    """Appends buffers, tensors and op codes to a model object (flatbuffer_utils' ModelT)."""

    def __init__(self, model):
        self.model = model
        self.subgraph = model.subgraphs[0]

    def opcode(self, builtin: int) -> int:
        for index, code in enumerate(self.model.operatorCodes):
            if _builtin_code(code) == builtin:
                return index
        code = schema.OperatorCodeT()
        code.builtinCode, code.deprecatedBuiltinCode = builtin, min(builtin, 127)
        code.version = 3  # int8 per-channel
        self.model.operatorCodes.append(code)
        return len(self.model.operatorCodes) - 1

    def constant(self, name: str, values: np.ndarray, tensor_type: int, scales,
                 quantized_dimension: int = 0) -> int:
        """A constant tensor holding `values` (per-channel scales, zero points 0)."""
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(values.tobytes(), np.uint8).copy()
        self.model.buffers.append(buffer)
        quantization = schema.QuantizationParametersT()
        quantization.scale = np.asarray(scales, np.float32)
        quantization.zeroPoint = np.zeros(len(quantization.scale), np.int64)
        quantization.quantizedDimension = quantized_dimension
        tensor = schema.TensorT()
        tensor.name, tensor.type = name.encode(), tensor_type
        tensor.shape = np.asarray(values.shape, np.int32)
        tensor.buffer, tensor.quantization = len(self.model.buffers) - 1, quantization
        self.subgraph.tensors.append(tensor)
        return len(self.subgraph.tensors) - 1


def _identity_depthwise(editor: _Editor, op, activation: int) -> bool:
    """Turns the activation op `op` into a 1x1 identity depthwise convolution with
    `activation` fused; False (op unchanged) unless its input is int8 [1, H, W, C]."""
    source = editor.subgraph.tensors[op.inputs[0]]
    quantization = source.quantization
    if (source.type != schema.TensorType.INT8 or len(source.shape) != 4
            or quantization is None or quantization.scale is None
            or len(quantization.scale) != 1 or int(source.shape[-1]) < 1):
        return False
    channels, scale = int(source.shape[-1]), float(quantization.scale[0])
    name = source.name.decode()
    kernel = editor.constant(f"{name}/identity_kernel", np.full((1, 1, 1, channels), 127, np.int8),
                             schema.TensorType.INT8, [1 / 127] * channels, quantized_dimension=3)
    bias = editor.constant(f"{name}/identity_bias", np.zeros(channels, np.int32),
                           schema.TensorType.INT32, [scale / 127] * channels)
    options = schema.DepthwiseConv2DOptionsT()
    options.padding = schema.Padding.VALID
    options.strideH = options.strideW = 1
    options.dilationHFactor = options.dilationWFactor = options.depthMultiplier = 1
    options.fusedActivationFunction = activation
    op.opcodeIndex = editor.opcode(_OPS.DEPTHWISE_CONV_2D)
    op.inputs = np.asarray([op.inputs[0], kernel, bias], np.int32)
    op.builtinOptionsType = schema.BuiltinOptions.DepthwiseConv2DOptions
    op.builtinOptions = options
    return True


def delegate_int8_activations(flatbuffer: bytes) -> tuple[bytes, int]:
    """(the model with every standalone int8 RELU / RELU6 of its main subgraph made a fused
    1x1 identity depthwise convolution, how many were replaced); see the module docstring."""
    model = flatbuffer_utils.read_model_from_bytearray(flatbuffer)
    editor = _Editor(model)
    codes = [_builtin_code(code) for code in model.operatorCodes]
    replaced = sum(_identity_depthwise(editor, op, _ACTIVATIONS[codes[op.opcodeIndex]])
                   for op in editor.subgraph.operators if codes[op.opcodeIndex] in _ACTIVATIONS)
    if not replaced:
        return flatbuffer, 0
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)), replaced
