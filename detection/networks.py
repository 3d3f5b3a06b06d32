"""The seed's network architectures for 1-s log-mel windows.

Every network takes a float tensor ``(N, n_mels, T)`` of raw (dB) feature windows and returns
logits ``(N,)``; ``torch.sigmoid`` of a logit is the scream probability. Each starts with a
per-mel BatchNorm over the input (so it trains on raw dB features) and ends with global pooling
over time before its classifier head (so it does not memorise where in the window a sound is).

- ``A``: 1xN kernels along time. The mel bands are the input channels of temporal (1-D)
  convolutions, as in TC-ResNet: cheap, and the fastest to score.
- ``A_Depthwise``: ``A`` with depthwise-separable convolutions (a 1xN temporal filter per band
  or channel, then a 1x1 mix): fewer FLOPs.
- ``B``: Nx1 kernels along frequency (2-D convolutions over the mel/time plane that never mix
  neighbouring frames); pooling shrinks time between them. The pooled per-frame spectral
  embedding is mixed by a 1x1 layer, then pooled over time.
- ``C``: MxN (3x3) kernels, a small VGG-style 2-D CNN with the same embedding head as ``B``.
- ``CRNN``: a 2-D convolutional front end that pools frequency, then an LSTM (or GRU) over time.

``Ensemble`` averages the logits of several networks of one architecture, trained from different
seeds (``build_network(..., members=K)``): it scores like any one of them, K times the cost.

``build_network`` makes one by name; ``count_parameters`` and ``count_flops`` measure them.
"""

from __future__ import annotations

import inspect

import torch
from torch import nn

MIN_MELS = 16
MIN_FRAMES = 6


def _pool(want: int, length: int) -> int:
    """A pooling size that never shrinks a dimension below one element."""
    return max(1, min(want, length))


def _check_input_size(n_mels: int, n_frames: int) -> None:
    if n_mels < MIN_MELS or n_frames < MIN_FRAMES:
        raise ValueError(
            f"networks need n_mels >= {MIN_MELS} and n_frames >= {MIN_FRAMES},"
            f" got n_mels={n_mels}, n_frames={n_frames}"
        )


def _channels(base: int, width: float) -> int:
    return max(4, round(base * width))


def _head(features: int, hidden: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Dropout(dropout),
        nn.Linear(features, hidden),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(hidden, 1),
    )


class _WindowNet(nn.Module):
    """Shared input checks and the per-mel input BatchNorm."""

    def __init__(self, n_mels: int, n_frames: int) -> None:
        super().__init__()
        _check_input_size(n_mels, n_frames)
        self.n_mels = n_mels
        self.n_frames = n_frames
        self.input_norm = nn.BatchNorm1d(n_mels)

    def _normalised(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[1] != self.n_mels:
            raise ValueError(f"expected input (N, {self.n_mels}, T), got {tuple(x.shape)}")
        return self.input_norm(x)


# --------------------------------------------------------------------------- Type A


def _temporal_block(c_in: int, c_out: int, stride: int, depthwise: bool) -> list[nn.Module]:
    if depthwise:
        conv = [
            nn.Conv1d(c_in, c_in, 3, stride=stride, padding=1, groups=c_in, bias=False),
            nn.BatchNorm1d(c_in),
            nn.ReLU(inplace=True),
            nn.Conv1d(c_in, c_out, 1, bias=False),
        ]
    else:
        conv = [nn.Conv1d(c_in, c_out, 3, stride=stride, padding=1, bias=False)]
    return [*conv, nn.BatchNorm1d(c_out), nn.ReLU(inplace=True)]


class TypeA(_WindowNet):
    """1xN kernels along time, the mel bands as channels (TC-ResNet style)."""

    depthwise = False

    def __init__(
        self, n_mels: int, n_frames: int, dropout: float = 0.3, width: float = 1.0
    ) -> None:
        super().__init__(n_mels, n_frames)
        c1, c2, c3 = (_channels(c, width) for c in (64, 128, 256))
        length = (n_frames + 1) // 2  # first convolution has stride 2
        p1 = _pool(2, length)
        length //= p1
        p2 = _pool(2, length)
        self.features = nn.Sequential(
            *_temporal_block(n_mels, c1, 2, self.depthwise),
            nn.MaxPool1d(p1),
            *_temporal_block(c1, c2, 1, self.depthwise),
            nn.MaxPool1d(p2),
            *_temporal_block(c2, c3, 1, self.depthwise),
        )
        self.head = _head(c3, _channels(96, width), dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(self._normalised(x))
        return self.head(h.mean(dim=2)).squeeze(1)


class TypeADepthwise(TypeA):
    """Type A with depthwise-separable convolutions: a temporal filter per channel, 1x1 mix."""

    depthwise = True


# --------------------------------------------------------------------------- Types B and C


def _plane_stack(
    n_mels: int,
    n_frames: int,
    kernels: tuple[tuple[int, int], ...],
    strides: tuple[tuple[int, int], ...],
    channels: tuple[int, ...],
    pools: tuple[tuple[int, int], ...],
) -> tuple[nn.Sequential, int, int, int]:
    """2-D conv + BatchNorm + ReLU (+ max-pool) blocks; returns them and the output C, F, T."""
    layers: list[nn.Module] = []
    c_in, freq, time = 1, n_mels, n_frames
    for kernel, stride, c_out, (pf, pt) in zip(kernels, strides, channels, pools, strict=True):
        pad = (kernel[0] // 2, kernel[1] // 2)
        layers += [
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=pad, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        ]
        freq = (freq + 2 * pad[0] - kernel[0]) // stride[0] + 1
        time = (time + 2 * pad[1] - kernel[1]) // stride[1] + 1
        pf, pt = _pool(pf, freq), _pool(pt, time)
        if pf > 1 or pt > 1:
            layers.append(nn.MaxPool2d((pf, pt)))
        freq, time, c_in = freq // pf, time // pt, c_out
    return nn.Sequential(*layers), c_in, freq, time


class _PlaneNet(_WindowNet):
    """2-D convolutions over the (mel, time) plane, then a per-frame embedding of the pooled
    spectrum (1x1 over all channels x bands), global average + max over time, and the head."""

    def __init__(
        self,
        n_mels: int,
        n_frames: int,
        kernels: tuple[tuple[int, int], ...],
        strides: tuple[tuple[int, int], ...],
        channels: tuple[int, ...],
        pools: tuple[tuple[int, int], ...],
        embed: int,
        dropout: float,
    ) -> None:
        super().__init__(n_mels, n_frames)
        self.features, c_out, freq, _ = _plane_stack(
            n_mels, n_frames, kernels, strides, channels, pools
        )
        self.embed = nn.Sequential(
            nn.Conv1d(c_out * freq, embed, 1, bias=False),
            nn.BatchNorm1d(embed),
            nn.ReLU(inplace=True),
        )
        self.head = _head(2 * embed, embed // 2, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(self._normalised(x).unsqueeze(1))  # (N, C, F, T)
        h = self.embed(h.flatten(1, 2))  # (N, E, T)
        pooled = torch.cat([h.mean(dim=2), h.amax(dim=2)], dim=1)
        return self.head(pooled).squeeze(1)


class TypeB(_PlaneNet):
    """Nx1 kernels along frequency: spectral shape per frame, pooled over time."""

    def __init__(
        self, n_mels: int, n_frames: int, dropout: float = 0.3, width: float = 1.0
    ) -> None:
        super().__init__(
            n_mels,
            n_frames,
            kernels=((5, 1), (3, 1), (3, 1)),
            strides=((2, 1), (1, 1), (1, 1)),
            channels=tuple(_channels(c, width) for c in (16, 48, 96)),
            pools=((2, 4), (2, 2), (1, 1)),
            embed=_channels(384, width),
            dropout=dropout,
        )


class TypeC(_PlaneNet):
    """MxN (3x3) kernels over the mel/time plane."""

    def __init__(
        self, n_mels: int, n_frames: int, dropout: float = 0.3, width: float = 1.0
    ) -> None:
        super().__init__(
            n_mels,
            n_frames,
            kernels=((3, 3),) * 4,
            strides=((2, 2), (1, 1), (1, 1), (1, 1)),
            channels=tuple(_channels(c, width) for c in (16, 32, 64, 128)),
            pools=((2, 2), (2, 2), (2, 1), (1, 1)),
            embed=_channels(384, width),
            dropout=dropout,
        )


# --------------------------------------------------------------------------- CRNN


class CRNN(_WindowNet):
    """Convolutions that pool frequency (and halve time twice), then an LSTM/GRU over time."""

    def __init__(
        self,
        n_mels: int,
        n_frames: int,
        dropout: float = 0.3,
        width: float = 1.0,
        rnn: str = "lstm",
        hidden: int = 64,
    ) -> None:
        super().__init__(n_mels, n_frames)
        recurrent = {"lstm": nn.LSTM, "gru": nn.GRU}
        if rnn not in recurrent:
            raise ValueError(f"rnn must be one of {sorted(recurrent)}, got {rnn!r}")
        self.features, c_out, freq, _ = _plane_stack(
            n_mels,
            n_frames,
            kernels=((3, 3),) * 3,
            strides=((2, 1), (1, 1), (1, 1)),
            channels=tuple(_channels(c, width) for c in (16, 32, 64)),
            pools=((2, 2), (4, 2), (2, 1)),
        )
        self.rnn = recurrent[rnn](c_out * freq, hidden, batch_first=True, bidirectional=True)
        self.head = _head(2 * hidden, hidden, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(self._normalised(x).unsqueeze(1))  # (N, C, F, T)
        seq = h.flatten(1, 2).transpose(1, 2)  # (N, T, C*F)
        out, _ = self.rnn(seq)
        return self.head(out.mean(dim=1)).squeeze(1)


# --------------------------------------------------------------------------- registry

ARCHITECTURES: dict[str, type[nn.Module]] = {
    "A": TypeA,
    "A_Depthwise": TypeADepthwise,
    "B": TypeB,
    "C": TypeC,
    "CRNN": CRNN,
}


class Ensemble(nn.Module):
    """Several networks scoring the same windows; the logit is the mean of theirs.

    Networks trained from different seeds disagree most on sounds none of them was taught
    (their errors are partly independent), so the mean logit is steadier than any one draw.
    """

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least 2 members, got {len(members)}")
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = self.members[0](x)
        for member in self.members[1:]:
            total = total + member(x)
        return total / len(self.members)


def build_network(
    arch: str, n_mels: int, n_frames: int, dropout: float = 0.3, members: int = 1, **kwargs
) -> nn.Module:
    """A fresh network of architecture ``arch`` for ``(N, n_mels, n_frames)`` windows.

    ``kwargs`` are the architecture's own parameters (``width`` for all, ``rnn`` and ``hidden``
    for CRNN); they are what a model artifact stores as ``arch_params``, with ``members``:
    more than 1 gives an ``Ensemble`` of that many networks.
    """
    if members != 1:
        if not isinstance(members, int) or members < 2:
            raise ValueError(f"members must be a whole number >= 1, got {members!r}")
        return Ensemble(
            [build_network(arch, n_mels, n_frames, dropout, **kwargs) for _ in range(members)]
        )
    try:
        cls = ARCHITECTURES[arch]
    except KeyError:
        raise ValueError(
            f"unknown architecture {arch!r}; valid: {', '.join(ARCHITECTURES)}"
        ) from None
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "n_mels", "n_frames"}
    unknown = set(kwargs) - accepted
    if unknown:
        raise ValueError(
            f"architecture {arch} does not take {sorted(unknown)}; it takes {sorted(accepted)}"
        )
    return cls(n_mels=n_mels, n_frames=n_frames, dropout=dropout, **kwargs)


def fold_batch_norms(net: nn.Module) -> nn.Module:
    """``net`` (in eval mode) with every convolution that a BatchNorm follows folded into one.

    In eval mode a BatchNorm is a per-channel scale and shift, so the convolution before it
    can absorb both (``torch.nn.utils.fusion.fuse_conv_bn_eval``); the BatchNorm becomes an
    ``Identity``. Scores change only by float rounding (about 1e-6); serving saves the
    BatchNorm's pass over every activation. The input BatchNorm of each network stays: the
    first convolution pads its input with zeros, so its shift cannot be folded exactly.
    Folded in place; returns ``net``. Not for training: the folded network has no BatchNorm.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    if net.training:
        raise ValueError("fold_batch_norms needs a network in eval mode")
    for module in net.modules():
        if not isinstance(module, nn.Sequential):
            continue
        for i in range(len(module) - 1):
            conv, norm = module[i], module[i + 1]
            if (isinstance(conv, nn.Conv1d) and type(norm) is nn.BatchNorm1d) or (
                isinstance(conv, nn.Conv2d) and type(norm) is nn.BatchNorm2d
            ):
                module[i] = fuse_conv_bn_eval(conv, norm)
                module[i + 1] = nn.Identity()
    return net


def count_parameters(net: nn.Module) -> int:
    """Trainable parameters (BatchNorm running statistics are buffers, not counted)."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def _recurrent_macs(module: nn.RNNBase, steps: int) -> int:
    gates = {"LSTM": 4, "GRU": 3}.get(module.mode, 1)
    directions = 2 if module.bidirectional else 1
    total, size_in = 0, module.input_size
    for _ in range(module.num_layers):
        total += gates * (size_in + module.hidden_size) * module.hidden_size * steps * directions
        size_in = module.hidden_size * directions
    return total


def count_flops(net: nn.Module, n_mels: int, n_frames: int) -> int:
    """FLOPs to score one ``(n_mels, n_frames)`` window, measured with forward hooks.

    Runs one window through ``net`` (in eval mode, restored afterwards) and counts
    multiply-accumulates x 2 of every Conv1d/Conv2d, Linear, LSTM and GRU layer from the shapes
    seen in the hooks. BatchNorm, activations, pooling and biases are not counted.
    """
    counts: list[int] = []

    def conv_hook(module, inputs, output):
        per_output = (module.in_channels // module.groups) * int(
            torch.tensor(module.kernel_size).prod()
        )
        counts.append(output[0].numel() * per_output)

    def linear_hook(module, inputs, output):
        counts.append(output[0].numel() * module.in_features)

    def recurrent_hook(module, inputs, output):
        steps = inputs[0].shape[1] if module.batch_first else inputs[0].shape[0]
        counts.append(_recurrent_macs(module, steps))

    handles = []
    for module in net.modules():
        if isinstance(module, nn.Conv1d | nn.Conv2d):
            handles.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, nn.Linear):
            handles.append(module.register_forward_hook(linear_hook))
        elif isinstance(module, nn.LSTM | nn.GRU):
            handles.append(module.register_forward_hook(recurrent_hook))
    was_training = net.training
    try:
        net.eval()
        with torch.inference_mode():
            net(torch.zeros(1, n_mels, n_frames))
    finally:
        for handle in handles:
            handle.remove()
        net.train(was_training)
    return 2 * sum(counts)


def windows_per_second(
    net: nn.Module, n_mels: int, n_frames: int, windows: int = 4096, batch_size: int = 512
) -> float:
    """Scoring speed of ``net`` in eval mode under ``torch.inference_mode`` (random windows).

    Uses the current torch thread setting; one warm-up batch is not timed.
    """
    import time

    was_training = net.training
    net.eval()
    batch = torch.randn(batch_size, n_mels, n_frames)
    try:
        with torch.inference_mode():
            net(batch)
            done, start = 0, time.perf_counter()
            while done < windows:
                size = min(batch_size, windows - done)
                net(batch[:size])
                done += size
            elapsed = time.perf_counter() - start
    finally:
        net.train(was_training)
    return done / elapsed
