"""Simulated rooms of the places the product listens in, by the image-source method.

``pyroomacoustics`` computes a room impulse response (RIR) of a shoebox room from its size, the
absorption of each surface (measured materials of its database, or an energy absorption for
an opening: 0.99 is open sky or an open end) and the positions of the source and the
microphone, with air absorption. Presets:

* ``alley``: a street canyon 20-60 m long, 2.5-6 m wide, between walls 6-15 m high: brick and
  rough concrete sides, asphalt-like concrete underfoot, open sky above and open at both ends
  (flutter echoes between the walls, little diffuse tail);
* ``tiled_restroom``: 2.5-7 x 2-5 x 2.4-3.2 m, ceramic tiles on every wall, marble floor,
  plasterboard ceiling (a bright, dense reverberation of about a second);
* ``station_hall``: 30-80 x 15-35 x 8-16 m, limestone and brick walls, a glazed front, marble
  floor, concrete ceiling (a long reverberation of several seconds).

A source (a person, 1.0-1.9 m high) and a microphone (a street light, a ceiling or wall
device: 1.5 m up to near the ceiling, below 6 m) are placed at random at least 0.5 m from every
surface and at least 1 m apart. Computing an RIR takes a fraction of a second to seconds, so
``rir_pool`` computes a fixed pool per preset once per process (seeded: the same pool every
time) and augmentations draw from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pyroomacoustics as pra

from .features import MODEL_RATE

WALLS = ("east", "west", "north", "south", "floor", "ceiling")  # east/west: the long axis
MAX_RIR_S = 2.0  # longer tails are cut (at most as long as one training clip matters)
SURFACE_MARGIN_M = 0.5
MIN_DISTANCE_M = 1.0
OPEN = 0.99  # energy absorption of an opening (open sky, an open end)


@dataclass(frozen=True)
class RoomPreset:
    """A kind of place: size ranges (length, width, height in m), each surface's material
    (a name of pyroomacoustics' database, or an energy absorption), the image-source order."""

    name: str
    low: tuple[float, float, float]
    high: tuple[float, float, float]
    surfaces: dict
    max_order: int
    mic_height: tuple[float, float] = (1.5, 6.0)


ROOM_PRESETS: dict[str, RoomPreset] = {
    preset.name: preset
    for preset in (
        RoomPreset(
            "alley",
            (20.0, 2.5, 6.0),
            (60.0, 6.0, 15.0),
            {
                "east": OPEN,
                "west": OPEN,
                "north": "brickwork",
                "south": "rough_concrete",
                "floor": "rough_concrete",
                "ceiling": OPEN,
            },
            max_order=20,
            mic_height=(2.5, 6.0),
        ),
        RoomPreset(
            "tiled_restroom",
            (2.5, 2.0, 2.4),
            (7.0, 5.0, 3.2),
            {
                "east": "ceramic_tiles",
                "west": "ceramic_tiles",
                "north": "ceramic_tiles",
                "south": "ceramic_tiles",
                "floor": "marble_floor",
                "ceiling": "plasterboard",
            },
            max_order=50,
        ),
        RoomPreset(
            "station_hall",
            (30.0, 15.0, 8.0),
            (80.0, 35.0, 16.0),
            {
                "east": "glass_window",
                "west": "limestone_wall",
                "north": "limestone_wall",
                "south": "smooth_brickwork_flush_pointing",
                "floor": "marble_floor",
                "ceiling": "rough_concrete",
            },
            max_order=20,
        ),
    )
}


def _material(spec) -> pra.Material:
    if isinstance(spec, str):
        return pra.Material(spec)
    return pra.Material(energy_absorption=float(spec))


def _position(rng: np.random.Generator, size: np.ndarray, height: tuple[float, float]):
    low = np.array([SURFACE_MARGIN_M, SURFACE_MARGIN_M, max(height[0], SURFACE_MARGIN_M)])
    high = np.array(
        [
            size[0] - SURFACE_MARGIN_M,
            size[1] - SURFACE_MARGIN_M,
            min(height[1], size[2] - SURFACE_MARGIN_M),
        ]
    )
    return rng.uniform(low, np.maximum(high, low + 1e-3))


def room_rir(preset: RoomPreset, rng: np.random.Generator, sr: int = MODEL_RATE) -> np.ndarray:
    """One impulse response of a random room of ``preset`` (size, source and microphone drawn
    from ``rng``), peak-normalised, float32, at most ``MAX_RIR_S`` long."""
    size = rng.uniform(preset.low, preset.high)
    source = _position(rng, size, (1.0, 1.9))
    mic = _position(rng, size, preset.mic_height)
    for _ in range(100):
        if np.linalg.norm(mic - source) >= MIN_DISTANCE_M:
            break
        mic = _position(rng, size, preset.mic_height)
    materials = {wall: _material(preset.surfaces[wall]) for wall in WALLS}
    room = pra.ShoeBox(
        size, fs=sr, materials=materials, max_order=preset.max_order, air_absorption=True
    )
    room.add_source(source)
    room.add_microphone(mic)
    room.compute_rir()
    rir = np.asarray(room.rir[0][0], dtype=np.float64)[: int(MAX_RIR_S * sr)]
    return (rir / np.max(np.abs(rir))).astype(np.float32)


@lru_cache(maxsize=16)
def rir_pool(name: str, size: int = 8, sr: int = MODEL_RATE, seed: int = 0) -> tuple:
    """``size`` impulse responses of preset ``name`` (computed once per process; the same
    for the same arguments)."""
    if name not in ROOM_PRESETS:
        raise ValueError(f"unknown room preset {name!r} ({', '.join(ROOM_PRESETS)})")
    preset = ROOM_PRESETS[name]
    rng = np.random.default_rng([seed, sum(name.encode())])
    return tuple(room_rir(preset, rng, sr) for _ in range(size))


def draw_rir(
    rng: np.random.Generator, presets: tuple[str, ...], size: int = 8, sr: int = MODEL_RATE
) -> np.ndarray:
    """An impulse response drawn from the pools of ``presets`` (preset, then pool member)."""
    name = presets[int(rng.integers(len(presets)))]
    pool = rir_pool(name, size, sr)
    return pool[int(rng.integers(len(pool)))]
