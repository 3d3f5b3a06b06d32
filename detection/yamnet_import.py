"""Read YAMNet's weights out of its TensorFlow Lite file into ``detection.yamnet.YAMNet``.

The file (``shared/models/yamnet/yamnet.tflite``) stores the convolution, dense and mel-matrix
weights as int8 with one scale per output channel (dynamic-range quantisation) and the biases
(batch norm folded in) as float32. ``read_tflite`` returns them as a ``QuantisedWeights`` dict
keyed by the PyTorch parameter names: int8 values in PyTorch's layout plus their scales, so the
shipped file (``detection.yamnet_weights``) holds exactly what the TFLite file holds.

``TFLiteYAMNet`` runs the file itself through the LiteRT interpreter: the reference the port is
tested against (``tests/detection/test_yamnet.py``). Both need ``ai-edge-litert``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from detection.yamnet import N_MELS, PATCH_SAMPLES, SCREAMING, SEPARABLE_LAYERS
from detection.yamnet_weights import QuantisedWeights

_PREFIX = "yamnet_frames/"


def _interpreter(path: Path | str) -> Interpreter:
    it = Interpreter(model_path=str(path), num_threads=1, experimental_preserve_all_tensors=True)
    it.allocate_tensors()
    return it


def _tensors(it: Interpreter) -> dict[str, dict]:
    """Constant tensors by the first part of their name (before ';')."""
    out = {}
    for detail in it.get_tensor_details():
        name = detail["name"].split(";")[0]
        if name.startswith(_PREFIX):
            out.setdefault(name[len(_PREFIX) :], []).append(detail)
    return out


def _value(it: Interpreter, detail: dict) -> tuple[np.ndarray, np.ndarray | None]:
    value = np.array(it.get_tensor(detail["index"]))
    scales = detail["quantization_parameters"]["scales"]
    if value.dtype == np.int8:
        if np.any(detail["quantization_parameters"]["zero_points"]):
            raise ValueError(f"{detail['name']}: asymmetric quantisation is not supported")
        return value, np.asarray(scales, dtype=np.float32)
    return value.astype(np.float32), None


def read_tflite(path: Path | str) -> QuantisedWeights:
    """The port's parameters and buffers, read from the TFLite file at ``path``."""
    it = _interpreter(path)
    by_name = _tensors(it)
    weights: QuantisedWeights = {}

    def pick(name: str, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray | None]:
        for detail in by_name.get(name, []):
            if tuple(detail["shape"]) == shape:
                return _value(it, detail)
        raise ValueError(f"no tensor {name!r} of shape {shape} in {path}")

    def conv(values: tuple[np.ndarray, np.ndarray | None], order: tuple[int, ...]):
        array, scales = values
        return np.ascontiguousarray(array.transpose(order)), scales

    weights["conv.weight"] = conv(pick("layer1/conv/Conv2D", (32, 3, 3, 1)), (0, 3, 1, 2))
    weights["conv.bias"] = pick("layer1/conv/bn/FusedBatchNormV3", (32,))
    channels = 32
    for i, (_stride, out) in enumerate(SEPARABLE_LAYERS):
        layer = f"layer{i + 2}"
        dw = pick(f"{layer}/depthwise_conv/bn/FusedBatchNormV3", (1, 3, 3, channels))
        weights[f"layers.{i}.depthwise.weight"] = conv(dw, (3, 0, 1, 2))
        weights[f"layers.{i}.depthwise.bias"] = pick(
            f"{layer}/depthwise_conv/bn/FusedBatchNormV3", (channels,)
        )
        pw = pick(f"{layer}/pointwise_conv/Conv2D", (out, 1, 1, channels))
        weights[f"layers.{i}.pointwise.weight"] = conv(pw, (0, 3, 1, 2))
        weights[f"layers.{i}.pointwise.bias"] = pick(
            f"{layer}/pointwise_conv/bn/FusedBatchNormV3", (out,)
        )
        channels = out
    weights["classifier.weight"] = pick("dense/MatMul", (521, 1024))
    weights["classifier.bias"] = _classifier_bias(it)
    weights["front_end.mel_matrix"] = pick("tf_op_layer_MatMul/MatMul", (N_MELS, 257))
    weights["front_end.mel_offset"] = pick("tf_op_layer_AddV2_3/AddV2_3", (N_MELS,))
    window = pick("tf_op_layer_Mul_3/Mul_3/y", (400,))
    weights["front_end.window"] = window
    return weights


def _classifier_bias(it: Interpreter) -> tuple[np.ndarray, None]:
    """The dense layer's bias: the float [521] input of the last FULLY_CONNECTED op."""
    for op in it._get_ops_details():
        if op["op_name"] == "FULLY_CONNECTED" and len(op["inputs"]) == 3:
            bias = np.array(it.get_tensor(op["inputs"][2]))
            if bias.shape == (521,):
                return bias.astype(np.float32), None
    raise ValueError("no classifier bias in the TFLite file")


class TFLiteYAMNet:
    """The TFLite file run by the LiteRT interpreter, one patch at a time."""

    def __init__(self, path: Path | str) -> None:
        self._it = _interpreter(path)
        self._input = self._it.get_input_details()[0]["index"]
        self._scores = self._it.get_output_details()[0]["index"]
        self._embedding = next(
            d["index"]
            for d in self._it.get_tensor_details()
            if re.match(r"yamnet_frames/global_average_pooling2d/Mean;", d["name"])
        )

    def __call__(self, patch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if patch.shape != (PATCH_SAMPLES,):
            raise ValueError(f"expected one patch of {PATCH_SAMPLES} samples, got {patch.shape}")
        self._it.set_tensor(self._input, patch.astype(np.float32))
        self._it.invoke()
        scores = np.array(self._it.get_tensor(self._scores))[0]
        embedding = np.array(self._it.get_tensor(self._embedding))[0]
        return scores, embedding

    def scream_score(self, patch: np.ndarray) -> float:
        return float(self(patch)[0][SCREAMING])
