"""Tiny real packages for the pack builder's tests: a .deb built with dpkg-deb and a wheel."""

from __future__ import annotations

import gzip
import io
import struct
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import soundfile as sf

from detection.packs.catalogue import Pack, PackageSpec, Rule
from detection.packs.fetch import PYPI

DEB_NAME = "eyescream-fixture-sounds"
DEB_VERSION = "1.2-3"
WHEEL_NAME = "eyescream-fixture-wheel"
WHEEL_VERSION = "0.1.0"
SOUNDS = "usr/share/games/fixture/sounds"
RATE = 44_100


def harmonic(f0_start: float, f0_end: float, seconds: float, rate: int = RATE) -> np.ndarray:
    """A loud harmonic tone (4 partials) gliding from f0_start to f0_end, with 20 ms fades."""
    t = np.arange(int(seconds * rate)) / rate
    f0 = f0_start + (f0_end - f0_start) * t / seconds
    phase = 2 * np.pi * np.cumsum(f0) / rate
    y = sum(np.sin(k * phase) / k for k in range(1, 5))
    fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.02)
    return (0.4 * y * fade).astype(np.float32)


def encoded(samples: np.ndarray, fmt: str, rate: int = RATE) -> bytes:
    buffer = io.BytesIO()
    subtype = "VORBIS" if fmt == "OGG" else "PCM_16"
    sf.write(buffer, samples, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def deb_members() -> dict[str, bytes]:
    """Relative path -> bytes of the fixture package's sounds (two of them corrupt)."""
    rng = np.random.default_rng(7)
    ogg = encoded(harmonic(120, 110, 1.0), "OGG")
    return {
        f"{SOUNDS}/scream_sweep.wav": encoded(harmonic(700, 900, 1.5), "WAV"),
        f"{SOUNDS}/grunt_low.ogg": ogg,
        f"{SOUNDS}/noise_burst.wav": encoded(
            (0.3 * rng.standard_normal(RATE)).astype(np.float32), "WAV"
        ),
        f"{SOUNDS}/garbage.wav": b"RIFF" + bytes(rng.integers(0, 256, 2000, dtype=np.uint8)),
        f"{SOUNDS}/truncated.ogg": ogg[: len(ogg) // 2],
        f"{SOUNDS}/laugh_kept.wav": encoded(harmonic(300, 250, 0.8, 22_050), "WAV", 22_050),
        f"{SOUNDS}/readme.txt": b"not audio",
    }


COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: fixture

Files: *
Copyright: 2026 Fixture Authors
License: CC-BY-SA-3.0

Files: debian/*
Copyright: 2026 Packager
License: GPL-2+
"""


def make_deb(work: Path, cache: Path) -> Path:
    """Build ``<DEB_NAME>_<DEB_VERSION>_all.deb`` into ``cache`` with dpkg-deb."""
    root = work / "debroot"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: {DEB_NAME}\nVersion: {DEB_VERSION}\nArchitecture: all\n"
        "Maintainer: Fixture <fixture@example.org>\nDescription: test sounds\n"
    )
    for rel, data in deb_members().items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    doc = root / "usr/share/doc" / DEB_NAME
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(COPYRIGHT)
    cache.mkdir(parents=True, exist_ok=True)
    deb = cache / f"{DEB_NAME}_{DEB_VERSION}_all.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "--build", str(root), str(deb)],
        check=True,
        capture_output=True,
    )
    return deb


def make_wheel(cache: Path) -> Path:
    """A wheel (a zip with a .whl name) holding one whistle and licence metadata."""
    cache.mkdir(parents=True, exist_ok=True)
    stem = WHEEL_NAME.replace("-", "_")
    wheel = cache / f"{stem}-{WHEEL_VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(f"{stem}/sounds/whistle.wav", encoded(harmonic(3000, 3000, 1.0), "WAV"))
        archive.writestr(
            f"{stem}-{WHEEL_VERSION}.dist-info/METADATA",
            f"Metadata-Version: 2.1\nName: {WHEEL_NAME}\nVersion: {WHEEL_VERSION}\n"
            "License: CC0-1.0\n",
        )
        archive.writestr(  # what pip reads to accept it (``pip download``)
            f"{stem}-{WHEEL_VERSION}.dist-info/WHEEL",
            "Wheel-Version: 1.0\nGenerator: eyescream-tests\nRoot-Is-Purelib: true\n"
            "Tag: py3-none-any\n",
        )
    return wheel


FIXTURE_PACK = Pack(
    "fixture",
    "test pack",
    (
        PackageSpec(
            DEB_NAME,
            rules=(
                Rule(SOUNDS + r"/(?P<name>laugh_kept)\.wav", "0_0", "laughing", "{name}"),
                Rule(
                    SOUNDS + r"/(?P<name>[a-z_]+)\.(?:wav|ogg)", "1", "cry", "v-{name}", screen=True
                ),  # fmt: skip
            ),
        ),
        PackageSpec(
            WHEEL_NAME,
            kind=PYPI,
            license_note="sounds CC0",
            rules=(
                Rule(r"eyescream_fixture_wheel/sounds/(?P<name>[a-z]+)\.wav", "0_1", "whistle"),
            ),
        ),
    ),
)


# --------------------------------------------------------------------------- C4Group encoder


def c4group_body(entries: dict[str, bytes | dict]) -> bytes:
    """An unpacked C4Group holding ``entries`` (name -> bytes, or a dict for a child group):
    the scrambled 204-byte header, one 316-byte record per entry, then the data."""
    from detection.packs.c4group import ENTRY_SIZE, GROUP_ID, HEADER_SIZE, scramble

    header = bytearray(HEADER_SIZE)
    header[: len(GROUP_ID)] = GROUP_ID
    header[28:40] = struct.pack("<iii", 1, 2, len(entries))
    records, data = b"", b""
    for name, value in entries.items():
        child = isinstance(value, dict)
        body = c4group_body(value) if child else value
        record = name.encode().ljust(260, b"\0")
        record += struct.pack("<5i", 0, int(child), len(body), 0, len(data))
        records += record.ljust(ENTRY_SIZE, b"\0")
        data += body
    return scramble(bytes(header)) + records + data


def c4group_file(entries: dict[str, bytes | dict]) -> bytes:
    """A packed C4Group file: the group gzipped, its magic bytes changed to 1e 8c."""
    packed = gzip.compress(c4group_body(entries))
    return b"\x1e\x8c" + packed[2:]
