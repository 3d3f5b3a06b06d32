"""SpecAugment of feature windows: time warp, frequency masks, time masks.

``spec_augment`` acts on one ``(n_mels, T)`` array, ``spec_augment_batch`` on a torch batch
``(N, n_mels, T)`` (used per training batch). Masked cells take the window's mean value
(features are dB, so zero would be a loud artificial value).
"""

from __future__ import annotations

import numpy as np


def _warp_positions(length: int, centre: float, shift: float) -> np.ndarray:
    """Source column for every target column when ``centre`` moves to ``centre + shift``."""
    target = np.arange(length, dtype=np.float64)
    new_centre = centre + shift
    left = target * (centre / new_centre)
    right = centre + (target - new_centre) * ((length - 1 - centre) / (length - 1 - new_centre))
    return np.where(target < new_centre, left, right)


def spec_augment(
    spec: np.ndarray,
    rng: np.random.Generator,
    time_warp: int = 4,
    freq_masks: int = 2,
    freq_width: int = 8,
    time_masks: int = 2,
    time_width: int = 5,
) -> np.ndarray:
    """SpecAugment of one ``(n_mels, T)`` window: time warp, frequency masks, time masks.

    Time warp moves a random centre column by up to ``time_warp`` columns, stretching one side
    and squeezing the other (linear interpolation). Each mask covers up to ``*_width`` rows or
    columns and takes the window's mean value.
    """
    spec = np.asarray(spec, dtype=np.float32)
    if spec.ndim != 2:
        raise ValueError(f"spec_augment takes one (n_mels, T) window, got shape {spec.shape}")
    n_mels, length = spec.shape
    out = spec.copy()
    warp = min(time_warp, (length - 3) // 2)
    if warp >= 1:
        centre = int(rng.integers(warp + 1, length - warp - 1))
        shift = int(rng.integers(-warp, warp + 1))
        if shift:
            src = _warp_positions(length, centre, shift)
            lo = np.clip(np.floor(src).astype(np.int64), 0, length - 1)
            hi = np.minimum(lo + 1, length - 1)
            frac = (src - lo).astype(np.float32)
            out = out[:, lo] * (1.0 - frac) + out[:, hi] * frac
    fill = out.mean()
    for _ in range(freq_masks):
        width = int(rng.integers(0, min(freq_width, n_mels) + 1))
        start = int(rng.integers(0, n_mels - width + 1))
        out[start : start + width, :] = fill
    for _ in range(time_masks):
        width = int(rng.integers(0, min(time_width, length) + 1))
        start = int(rng.integers(0, length - width + 1))
        out[:, start : start + width] = fill
    return out.astype(np.float32)


def spec_augment_batch(
    x,
    generator,
    time_warp: int = 4,
    freq_masks: int = 2,
    freq_width: int = 8,
    time_masks: int = 2,
    time_width: int = 5,
):
    """SpecAugment of a torch batch ``(N, n_mels, T)``, each window drawn independently.

    Vectorised (no Python loop over windows). ``generator`` is a ``torch.Generator`` on the
    batch's device. Returns a new tensor; the input is not modified.
    """
    import torch

    if x.dim() != 3:
        raise ValueError(f"spec_augment_batch takes (N, n_mels, T), got {tuple(x.shape)}")
    n, n_mels, length = x.shape
    device = x.device
    out = x.clone()
    if n == 0:
        return out

    def draw(high: int) -> torch.Tensor:
        """Integers in [0, high) per window (``high`` may be a tensor)."""
        u = torch.rand(n, generator=generator, device=device)
        return (u * high).floor().long()

    warp = min(time_warp, (length - 3) // 2)
    if warp >= 1:
        centre = (warp + 1 + draw(length - 2 * warp - 2)).to(x.dtype)[:, None]
        shift = (draw(2 * warp + 1) - warp).to(x.dtype)[:, None]
        target = torch.arange(length, device=device, dtype=x.dtype)[None, :]
        new_centre = centre + shift
        left = target * (centre / new_centre)
        right = centre + (target - new_centre) * ((length - 1 - centre) / (length - 1 - new_centre))
        src = torch.where(target < new_centre, left, right)  # (N, T)
        lo = src.floor().clamp(0, length - 1)
        frac = (src - lo)[:, None, :]
        lo = lo.long()
        hi = (lo + 1).clamp(max=length - 1)
        gather_lo = out.gather(2, lo[:, None, :].expand(n, n_mels, length))
        gather_hi = out.gather(2, hi[:, None, :].expand(n, n_mels, length))
        out = gather_lo * (1.0 - frac) + gather_hi * frac
    fill = out.mean(dim=(1, 2), keepdim=True)
    mask = torch.zeros(n, n_mels, length, dtype=torch.bool, device=device)
    rows = torch.arange(n_mels, device=device)[None, :]
    cols = torch.arange(length, device=device)[None, :]
    for _ in range(freq_masks):
        width = draw(min(freq_width, n_mels) + 1)
        start = draw(n_mels - width + 1)
        band = (rows >= start[:, None]) & (rows < (start + width)[:, None])
        mask |= band[:, :, None]
    for _ in range(time_masks):
        width = draw(min(time_width, length) + 1)
        start = draw(length - width + 1)
        span = (cols >= start[:, None]) & (cols < (start + width)[:, None])
        mask |= span[:, None, :]
    return torch.where(mask, fill.expand_as(out), out)
