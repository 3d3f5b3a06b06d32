"""The alert picture: log-mel spectrogram of the snippet with the score curve drawn under it.

Drawn directly with NumPy and Pillow (no plotting library, no global state): about 10 ms per
picture, so a burst of alerts costs the live path almost nothing, even in embedded mode where
pictures are drawn inside the serving process. The spectrogram comes from
``detection.features`` — the same front end the model sees.
"""

from __future__ import annotations

import io
import time
from collections.abc import Sequence
from functools import cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from detection.artifact_config import ArtifactError, feature_config, read_model_config
from detection.features import FeatureConfig, file_columns

from .picture_layout import HEIGHT, LEFT, RIGHT, WIDTH

SPEC_TOP, SPEC_BOTTOM = 26, 240  # spectrogram panel
CURVE_TOP, CURVE_BOTTOM = 250, 312  # score panel
DYNAMIC_RANGE_DB = 80.0  # colours span the loudest band down to this many dB below it
INK, GRID, CURVE, CURVE_FILL = (33, 37, 41), (150, 150, 150), (214, 39, 40), (246, 204, 204)


def active_feature_config(model_dir) -> tuple[FeatureConfig, float | None]:
    """Feature parameters and on-threshold of the active model (defaults if none is there)."""
    try:
        config = read_model_config(model_dir)
    except ArtifactError:
        return FeatureConfig(), None
    decision = config.get("decision") or {}
    return feature_config(config), float(decision.get("on_threshold", config["threshold"]))


def prepare_pictures(model_dir) -> float:
    """Draw one picture of silence now; returns the seconds it took.

    The first picture of a process imports librosa's filters and scipy's statistics, builds
    the filter bank, the palette and the fonts: seconds of CPU. A Celery worker does this before
    it forks its pool (``eyescream_site/celery.py``), so each pool process starts with all of it
    instead of paying it on its first alert, in the middle of a burst.
    """
    start = time.perf_counter()
    cfg, threshold = active_feature_config(model_dir)
    silence = np.zeros(cfg.sample_rate, dtype=np.float32)
    render_png(silence, cfg.sample_rate, [[0.0, 0.5]], cfg, threshold=threshold, title="")
    return time.perf_counter() - start


# Nine evenly spaced stops of the "magma" colour map (dark purple -> orange -> pale yellow),
# interpolated to 256 colours: no plotting library is imported into the serving process.
MAGMA_STOPS = (
    (0, 0, 4),
    (29, 17, 71),
    (81, 18, 124),
    (131, 38, 129),
    (183, 55, 121),
    (231, 82, 99),
    (252, 137, 97),
    (254, 196, 136),
    (252, 253, 191),
)


@cache
def _palette() -> np.ndarray:
    """The colour map as a (256, 3) uint8 lookup table."""
    stops = np.asarray(MAGMA_STOPS, dtype=np.float64)
    at = np.linspace(0.0, 1.0, len(stops))
    x = np.linspace(0.0, 1.0, 256)
    table = np.stack([np.interp(x, at, stops[:, c]) for c in range(3)], axis=1)
    return np.round(table).astype(np.uint8)


@cache
def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def spectrogram_rgb(columns: np.ndarray) -> np.ndarray:
    """``(n_mels, T)`` log-mel columns -> ``(n_mels, T, 3)`` uint8 colours, low bands last row.

    The loudest cell is the brightest colour; cells ``DYNAMIC_RANGE_DB`` or more below it are
    the darkest.
    """
    if columns.size == 0:
        return np.zeros((columns.shape[0], 0, 3), dtype=np.uint8)
    top = float(columns.max())
    scaled = (columns - (top - DYNAMIC_RANGE_DB)) * (255.0 / DYNAMIC_RANGE_DB)
    index = np.clip(scaled, 0, 255).astype(np.uint8)
    return _palette()[index[::-1]]


def nice_step(span: float, most: int = 10) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^k that puts at most ``most`` ticks on ``span``."""
    for exponent in range(-2, 5):
        for mantissa in (1.0, 2.0, 2.5, 5.0):
            step = mantissa * 10.0**exponent
            if span / step <= most:
                return step
    return span


def _clamp01(value: float) -> float:
    return min(max(value, 0.0), 1.0)


def _label(value: float, step: float) -> str:
    return f"{value:.0f}" if step >= 1 else f"{value:.2f}".rstrip("0").rstrip(".")


def _vertical_text(image: Image.Image, text: str, centre: tuple[int, int], font) -> None:
    """Draw ``text`` turned 90 degrees (reading upwards), centred on ``centre``."""
    left, top, right, bottom = font.getbbox(text)
    label = Image.new("RGB", (right - left + 2, bottom - top + 2), "white")
    ImageDraw.Draw(label).text((1 - left, 1 - top), text, fill=INK, font=font)
    label = label.rotate(90, expand=True)
    image.paste(label, (centre[0] - label.width // 2, centre[1] - label.height // 2))


def render_png(
    audio: np.ndarray,
    rate: int,
    score_curve: Sequence[Sequence[float]],
    cfg: FeatureConfig,
    threshold: float | None = None,
    title: str = "",
) -> bytes:
    """PNG bytes: spectrogram (top) and score curve (bottom) on one time axis from 0 s."""
    duration = max(len(audio) / rate, 1e-3)
    columns = file_columns(np.asarray(audio, dtype=np.float32), rate, cfg)
    width = RIGHT - LEFT

    height = CURVE_BOTTOM - CURVE_TOP

    def x_of(t: float) -> float:
        return LEFT + width * _clamp01(t / duration)

    def y_of(score: float) -> float:
        return CURVE_BOTTOM - height * _clamp01(score)

    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    small, normal = _font(11), _font(12)

    # Spectrogram, stretched over the panel (nearest neighbour: one block per cell).
    if columns.shape[1]:
        cells = Image.fromarray(spectrogram_rgb(columns), "RGB")
        # The columns cover the audio up to the last whole frame; keep their true width.
        covered = ((columns.shape[1] - 1) * cfg.hop_length + cfg.n_fft) / cfg.sample_rate
        panel_w = max(1, round(width * min(covered / duration, 1.0)))
        spec = cells.resize((panel_w, SPEC_BOTTOM - SPEC_TOP), Image.Resampling.NEAREST)
        image.paste(spec, (LEFT, SPEC_TOP))
    draw.rectangle((LEFT, SPEC_TOP, RIGHT, SPEC_BOTTOM), outline=INK)
    for band in range(0, cfg.n_mels + 1, 16):
        y = SPEC_BOTTOM - (SPEC_BOTTOM - SPEC_TOP) * band / cfg.n_mels
        draw.line((LEFT - 4, y, LEFT, y), fill=INK)
        draw.text((LEFT - 7, y), str(band), fill=INK, font=small, anchor="rm")
    _vertical_text(image, "mel band", (16, (SPEC_TOP + SPEC_BOTTOM) // 2), normal)
    if title:
        draw.text((WIDTH / 2, 13), title, fill=INK, font=normal, anchor="mm")

    # Score curve: filled area under the curve, the line, the dashed on-threshold.
    if len(score_curve):
        points = [(x_of(float(t)), y_of(float(s))) for t, s in score_curve]
        if len(points) > 1:
            area = [(points[0][0], CURVE_BOTTOM), *points, (points[-1][0], CURVE_BOTTOM)]
            draw.polygon(area, fill=CURVE_FILL)
            draw.line(points, fill=CURVE, width=2)
        else:
            draw.ellipse(
                (points[0][0] - 2, points[0][1] - 2, points[0][0] + 2, points[0][1] + 2), fill=CURVE
            )
    if threshold is not None:
        y = y_of(threshold)
        for x in range(LEFT, RIGHT, 8):
            draw.line((x, y, min(x + 4, RIGHT), y), fill=GRID)
    draw.rectangle((LEFT, CURVE_TOP, RIGHT, CURVE_BOTTOM), outline=INK)
    for value in (0.0, 0.5, 1.0):
        y = y_of(value)
        draw.line((LEFT - 4, y, LEFT, y), fill=INK)
        draw.text((LEFT - 7, y), f"{value:.1f}", fill=INK, font=small, anchor="rm")
    _vertical_text(image, "score", (16, (CURVE_TOP + CURVE_BOTTOM) // 2), normal)

    # Shared time axis.
    step = nice_step(duration)
    for k in range(int(duration / step + 1e-9) + 1):
        t = k * step
        x = x_of(t)
        draw.line((x, CURVE_BOTTOM, x, CURVE_BOTTOM + 4), fill=INK)
        draw.line((x, SPEC_BOTTOM, x, SPEC_BOTTOM + 4), fill=INK)
        draw.text((x, CURVE_BOTTOM + 6), _label(t, step), fill=INK, font=small, anchor="mt")
    draw.text(
        (WIDTH / 2, HEIGHT - 12),
        "seconds from snippet start (score at each window's end)",
        fill=INK,
        font=normal,
        anchor="mm",
    )

    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()
