"""YAMNet (AudioSet, 521 classes) in PyTorch: its log-mel front end and MobileNetV1 body.

A port of Google's YAMNet (Apache-2.0, tensorflow/models research/audioset/yamnet) as the
TensorFlow Lite file in ``shared/models/yamnet/`` holds it; the weights are read from that file
by ``detection.yamnet_import`` and shipped in ``detection/shipped/yamnet/`` (int8 with a scale
per output channel, exactly as the file stores them). ``tests/detection/test_yamnet.py`` proves
the port against the TFLite interpreter on real recordings.

One patch is 0.975 s of 16 kHz audio (``PATCH_SAMPLES``): 96 frames of a 25 ms periodic-Hann
STFT with a 10 ms hop and a 512-point FFT, 64 HTK mel bands from 125 to 7,500 Hz,
``log(mel + 0.001)``. The body is a 3x3 convolution and 13 depthwise-separable layers with
TensorFlow's "SAME" padding, each followed by ReLU (batch norm folded into the weights), global
average pooling to a 1,024-value embedding and a 521-class sigmoid classifier.

The TFLite kernels quantise the spectrum of each frame to int8 before the mel matrix
(``quantise_rows``); the port can do the same (``quantise_front_end=True``, to compare with the
file bit for bit up to the convolutions), but by default keeps it in float, as the original
float YAMNet does: rounding quiet bins to zero makes the log-mel, and the scores, jump with
tiny changes of the input (a 5 ms resampling delay moved 'Screaming' by up to 0.3).

``scream_scores`` gives the 'Screaming' class probability (``SCREAMING``), the second-stage
score the detector fuses with its own network's (``detection.second_stage``).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

SAMPLE_RATE = 16_000
PATCH_SAMPLES = 15_600
FRAME_LENGTH = 400
HOP_LENGTH = 160
FFT_LENGTH = 512
N_MELS = 64
PATCH_FRAMES = 96
LOG_OFFSET = 0.001
N_CLASSES = 521
EMBEDDING_SIZE = 1024

# AudioSet classes of yamnet_class_map.csv that sound like a scream.
SHOUT, CHILDREN_SHOUTING, YELL, SCREAMING = 6, 10, 9, 11

# (stride, output channels) of the 13 depthwise-separable layers after the first convolution.
SEPARABLE_LAYERS: tuple[tuple[int, int], ...] = (
    (1, 64),
    (2, 128),
    (1, 128),
    (2, 256),
    (1, 256),
    (2, 512),
    (1, 512),
    (1, 512),
    (1, 512),
    (1, 512),
    (1, 512),
    (2, 1024),
    (1, 1024),
)


def periodic_hann(length: int) -> np.ndarray:
    n = np.arange(length)
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * n / length)).astype(np.float32)


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "SAME" padding of one dimension: the extra element goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def quantise_rows(x: torch.Tensor) -> torch.Tensor:
    """``x`` as TFLite's dynamic-range kernels see it: each row (last axis) rounded to 256
    levels between its minimum (or 0) and maximum (asymmetric int8 with a zero point)."""
    low = torch.clamp(x.amin(dim=-1, keepdim=True), max=0.0)
    high = torch.clamp(x.amax(dim=-1, keepdim=True), min=0.0)
    scale = torch.clamp((high - low) / 255.0, min=torch.finfo(x.dtype).tiny)
    zero_point = torch.round(-128.0 - low / scale)
    q = torch.clamp(torch.round(x / scale) + zero_point, -128.0, 127.0)
    return (q - zero_point) * scale


def _pad_same(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    top, bottom = _same_padding(x.shape[-2], kernel, stride)
    left, right = _same_padding(x.shape[-1], kernel, stride)
    return F.pad(x, (left, right, top, bottom))


class LogMelFrontEnd(nn.Module):
    """Waveform patches ``(N, 15600)`` at 16 kHz to log-mel patches ``(N, 96, 64)``."""

    def __init__(self, quantise_input: bool = False) -> None:
        super().__init__()
        self.quantise_input = quantise_input
        self.register_buffer("window", torch.from_numpy(periodic_hann(FRAME_LENGTH)))
        self.register_buffer("mel_matrix", torch.zeros(N_MELS, FFT_LENGTH // 2 + 1))
        self.register_buffer("mel_offset", torch.full((N_MELS,), LOG_OFFSET))

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        if waveform.dim() != 2 or waveform.shape[1] != PATCH_SAMPLES:
            raise ValueError(f"expected waveform (N, {PATCH_SAMPLES}), got {tuple(waveform.shape)}")
        frames = waveform.unfold(1, FRAME_LENGTH, HOP_LENGTH) * self.window
        spectrum = torch.fft.rfft(frames, n=FFT_LENGTH)
        magnitude = torch.hypot(spectrum.real, spectrum.imag)  # abs() in the same bits, faster
        if self.quantise_input:
            magnitude = quantise_rows(magnitude)
        return torch.log(magnitude @ self.mel_matrix.T + self.mel_offset)


class _Separable(nn.Module):
    def __init__(self, channels_in: int, channels_out: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        # At stride 1 "SAME" pads one zero on every side: the convolution's own padding, without
        # the padded copy F.pad makes (at stride 2 the extra zero goes after only).
        padding = 1 if stride == 1 else 0
        self.depthwise = nn.Conv2d(
            channels_in, channels_in, 3, stride, padding=padding, groups=channels_in
        )
        self.pointwise = nn.Conv2d(channels_in, channels_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride != 1:
            x = _pad_same(x, 3, self.stride)
        x = F.relu(self.depthwise(x), inplace=True)
        return F.relu(self.pointwise(x), inplace=True)


class YAMNet(nn.Module):
    """Waveform patches ``(N, 15600)`` to ``(scores (N, 521), embeddings (N, 1024))``."""

    def __init__(self, quantise_front_end: bool = False) -> None:
        super().__init__()
        self.front_end = LogMelFrontEnd(quantise_front_end)
        self.conv = nn.Conv2d(1, 32, 3, 2)
        layers = []
        channels = 32
        for stride, out in SEPARABLE_LAYERS:
            layers.append(_Separable(channels, out, stride))
            channels = out
        self.layers = nn.Sequential(*layers)
        self.classifier = nn.Linear(EMBEDDING_SIZE, N_CLASSES)

    def embed(self, waveform: torch.Tensor) -> torch.Tensor:
        x = self.front_end(waveform).unsqueeze(1)
        x = F.relu(self.conv(_pad_same(x, 3, 2)), inplace=True)
        return self.layers(x).mean(dim=(2, 3))

    def forward(self, waveform: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = self.embed(waveform)
        return torch.sigmoid(self.classifier(embedding)), embedding


def frozen(model: YAMNet) -> torch.jit.ScriptModule:
    """``model`` traced and frozen for scoring: the same scores (``tests/detection/test_yamnet``)
    in about 30 % less time a patch in batches of 16 on one thread (the frozen graph fuses each
    convolution with its ReLU). The batch size stays free; a patch must be ``PATCH_SAMPLES``
    long (the length check is traced away). TorchScript is deprecated in favour of
    ``torch.compile``, which compiles for tens of seconds in every process that loads the model;
    it works in the pinned torch (``requirements.txt``)."""
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shapes are fixed per patch
        warnings.simplefilter("ignore", DeprecationWarning)
        traced = torch.jit.trace(model.eval(), torch.zeros(16, PATCH_SAMPLES), check_trace=False)
        return torch.jit.freeze(traced)


def patches(audio: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """One 0.975-s patch of 16 kHz ``audio`` from each sample index in ``starts``.

    A patch that runs past the end (or a start before 0) is filled with zeros, as a window of the
    detector's network is.
    """
    audio = np.asarray(audio, dtype=np.float32)
    starts = np.asarray(starts, dtype=np.int64)
    padded = np.concatenate(
        [np.zeros(PATCH_SAMPLES, np.float32), audio, np.zeros(PATCH_SAMPLES, np.float32)]
    )
    index = starts[:, None] + PATCH_SAMPLES + np.arange(PATCH_SAMPLES)[None, :]
    return padded[np.clip(index, 0, len(padded) - 1)]


@torch.inference_mode()
def scream_scores(model: YAMNet, batch: np.ndarray, chunk: int = 16) -> np.ndarray:
    """The 'Screaming' probability of each patch in ``batch`` ``(N, 15600)``.

    ``chunk`` patches go through the network at a time: 16 keeps the activations in cache
    (2.6-2.7 ms a patch on one thread against 3.0-3.2 at 64, same scores)."""
    out = np.empty(len(batch), dtype=np.float32)
    for i in range(0, len(batch), chunk):
        scores, _ = model(torch.from_numpy(np.ascontiguousarray(batch[i : i + chunk])))
        out[i : i + chunk] = scores[:, SCREAMING].numpy()
    return out
