"""Reading OpenClonk C4Group archives (``.ocg``, ``.ocd``, ``.ocf``, ...).

A packed group on disk is a gzip stream whose two magic bytes are ``1e 8c`` instead of
``1f 8b``. Decompressed, a group is:

- a 204-byte header, scrambled: every byte XORed with 0xED, then within each run of three
  bytes the first and third swapped. Unscrambled it starts with the 24-character id
  ``RedWolf Design GrpFolder`` (in a 28-byte field), then little-endian int32 version 1, version
  2 and the number of entries (at byte 36);
- one 316-byte record per entry, not scrambled: the name (260 bytes, NUL-padded), int32
  ``packed``, ``child group`` flag, ``size``, an unused int32, ``offset``, then time, CRC and
  padding;
- the entries' data, each at ``offset`` bytes after the last record. The data of a child group
  is itself a group (header, records, data), not compressed again.

A group unpacked on disk is a plain folder; :func:`group_files` reads both.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

PACKED_MAGIC = b"\x1e\x8c"
GZIP_MAGIC = b"\x1f\x8b"
GROUP_ID = b"RedWolf Design GrpFolder"
HEADER_SIZE = 204
ENTRY_SIZE = 316
NAME_SIZE = 260
SCRAMBLE_XOR = 0xED
MAX_DEPTH = 16


class C4GroupError(ValueError):
    """Bytes that are not a readable C4Group."""


def scramble(header: bytes) -> bytes:
    """Scramble (or unscramble: the operation is its own inverse) a group header."""
    out = bytearray(b ^ SCRAMBLE_XOR for b in header)
    for i in range(0, len(out) - 2, 3):
        out[i], out[i + 2] = out[i + 2], out[i]
    return bytes(out)


def unpack_stream(data: bytes) -> bytes:
    """The decompressed group of a packed group file (its gzip magic restored)."""
    if data[:2] != PACKED_MAGIC:
        raise C4GroupError("not a packed C4Group (no 1e 8c magic)")
    try:
        return gzip.decompress(GZIP_MAGIC + data[2:])
    except (OSError, EOFError, zlib.error) as exc:
        raise C4GroupError(f"cannot decompress: {exc}") from exc


def _entries(group: bytes, base: int, end: int, prefix: str, depth: int):
    if depth > MAX_DEPTH:
        raise C4GroupError(f"{prefix or '/'}: groups nested more than {MAX_DEPTH} deep")
    if end - base < HEADER_SIZE:
        raise C4GroupError(f"{prefix or '/'}: group shorter than its header")
    header = scramble(group[base : base + HEADER_SIZE])
    if not header.startswith(GROUP_ID):
        raise C4GroupError(f"{prefix or '/'}: no C4Group header id")
    (count,) = struct.unpack_from("<i", header, 36)
    records = base + HEADER_SIZE
    data_at = records + count * ENTRY_SIZE
    if count < 0 or data_at > end:
        raise C4GroupError(f"{prefix or '/'}: entry table ({count} entries) runs past the end")
    for index in range(count):
        record = records + index * ENTRY_SIZE
        raw_name = group[record : record + NAME_SIZE].split(b"\0", 1)[0]
        name = raw_name.decode("utf-8", errors="replace")
        _packed, child, size, _unused, offset = struct.unpack_from("<5i", group, record + NAME_SIZE)
        path = f"{prefix}{name}"
        start = data_at + offset
        if not name or "/" in name or name in (".", "..") or size < 0 or offset < 0:
            raise C4GroupError(f"{path}: bad entry record")
        if start + size > end:
            raise C4GroupError(f"{path}: data runs past the end of its group")
        if child:
            yield from _entries(group, start, start + size, f"{path}/", depth + 1)
        else:
            yield path, start, size


def group_entries(group: bytes) -> list[tuple[str, int, int]]:
    """(path, start, size) of every file in a decompressed group, child groups' files named
    ``<child>/<file>``. Raises :class:`C4GroupError` on a malformed group (nothing is
    returned from it then)."""
    return list(_entries(group, 0, len(group), "", 0))


def read_group(data: bytes) -> Iterator[tuple[str, bytes]]:
    """(path, bytes) of every file of a packed group file's contents."""
    group = unpack_stream(data)
    for path, start, size in group_entries(group):
        yield path, group[start : start + size]


def group_files(path: str | Path) -> Iterator[tuple[str, bytes]]:
    """(path inside the group, bytes) of every file of a group on disk, packed or a folder."""
    path = Path(path)
    if path.is_dir():
        for file in sorted(p for p in path.rglob("*") if p.is_file() and not p.is_symlink()):
            yield file.relative_to(path).as_posix(), file.read_bytes()
        return
    yield from read_group(path.read_bytes())
