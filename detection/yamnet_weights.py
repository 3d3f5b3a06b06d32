"""The shipped YAMNet weights: ``detection/shipped/yamnet/weights.pt``.

The file holds what ``detection.yamnet_import.read_tflite`` read from the TFLite file: each
parameter as int8 values with a float32 scale per output channel, or as float32 (biases, the
first layers, the Hann window), 3.8 MB in all. ``load_yamnet`` dequantises them into a
``YAMNet`` in evaluation mode. Licence: Apache-2.0 (``NOTICE`` beside the weights).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .yamnet import YAMNet, frozen

YAMNET_DIR = Path(__file__).resolve().parent / "shipped" / "yamnet"
WEIGHTS_FILE = "weights.pt"

# A weight: (values, scales or None). Values are int8 when scales are given, else float32.
QuantisedWeights = dict[str, tuple[np.ndarray, np.ndarray | None]]


def dequantise(weights: QuantisedWeights) -> dict[str, np.ndarray]:
    """Float32 arrays: int8 values times the scale of their output channel (axis 0)."""
    out = {}
    for name, (values, scales) in weights.items():
        if scales is None:
            out[name] = values.astype(np.float32)
        else:
            shape = (-1,) + (1,) * (values.ndim - 1)
            out[name] = values.astype(np.float32) * scales.reshape(shape)
    return out


def save_weights(weights: QuantisedWeights, path: Path) -> None:
    payload = {
        name: {
            "values": torch.from_numpy(np.ascontiguousarray(values)),
            "scales": None if scales is None else torch.from_numpy(scales),
        }
        for name, (values, scales) in weights.items()
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def read_weights(path: Path) -> QuantisedWeights:
    payload = torch.load(path, map_location="cpu", weights_only=True)
    return {
        name: (
            item["values"].numpy(),
            None if item["scales"] is None else item["scales"].numpy(),
        )
        for name, item in payload.items()
    }


def build_yamnet(weights: QuantisedWeights, quantise_front_end: bool = False) -> YAMNet:
    model = YAMNet(quantise_front_end)
    state = {name: torch.from_numpy(array) for name, array in dequantise(weights).items()}
    model.load_state_dict(state, strict=True)
    return model.eval().to(memory_format=torch.channels_last)


def load_yamnet(
    folder: Path = YAMNET_DIR, quantise_front_end: bool = False, for_scoring: bool = False
) -> YAMNet:
    """The shipped YAMNet (or the one in ``folder``), ready to score. ``quantise_front_end``
    rounds the spectrum as the TFLite kernels do (``yamnet.quantise_rows``): only for comparing
    with the TFLite file; it makes scores jump with tiny changes of the input. ``for_scoring``:
    traced and frozen (``yamnet.frozen``; same scores, faster), for ``scream_scores``."""
    path = Path(folder) / WEIGHTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no YAMNet weights at {path} (python manage.py yamnet_import)")
    model = build_yamnet(read_weights(path), quantise_front_end)
    return frozen(model) if for_scoring else model
