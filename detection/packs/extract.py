"""Unpack a package and list its members: plain files and the members of zip archives in it.

A ``.deb`` is unpacked with ``dpkg-deb -x`` (no install), a wheel with ``zipfile``. Zip
archives inside (Quake ``.pk3``, 0 A.D. ``public.zip``) are opened in place and their members
named ``<archive path>!<member path>``; so are the files of Qt ``.rcc`` resource bundles
(gcompris), of OpenClonk C4Group archives (``.ocg``, ``.ocd``, ``.ocf``: child groups read as
folders) and of Transport Tycoon sample catalogues (OpenSFX ``.cat``).
"""

from __future__ import annotations

import email.parser
import fnmatch
import os
import re
import signal
import struct
import subprocess
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .c4group import C4GroupError, group_entries, unpack_stream

ARCHIVE_SEP = "!"


class ExtractError(RuntimeError):
    """A package that cannot be unpacked."""


@dataclass(frozen=True)
class Member:
    """One file of a package (or of an archive in it); ``read`` gives its bytes."""

    path: str
    size: int
    read: Callable[[], bytes]


def extract_deb(deb: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Unpack a .deb's files into ``dest`` (``dpkg-deb -x``)."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    # Its own process group: dpkg-deb runs tar and a decompressor, and an interrupted build
    # must stop all of them, not only dpkg-deb.
    process = subprocess.Popen(
        ["dpkg-deb", "-x", str(deb), str(dest)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _, stderr = process.communicate()
    except BaseException:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
    if process.returncode != 0:
        raise ExtractError(f"dpkg-deb -x {Path(deb).name} failed: {stderr.strip()}")
    return dest


def _safe_member(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return bool(parts) and not name.startswith("/") and ".." not in parts


def extract_wheel(wheel: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Unpack a wheel (a zip) into ``dest``; members escaping ``dest`` are refused."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(wheel) as archive:
            for info in archive.infolist():
                if info.is_dir():
                    continue
                if not _safe_member(info.filename):
                    raise ExtractError(f"{Path(wheel).name}: unsafe member {info.filename!r}")
                target = dest / info.filename
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.read(info))
    except (zipfile.BadZipFile, OSError) as exc:
        raise ExtractError(f"{Path(wheel).name}: cannot unpack: {exc}") from exc
    return dest


def _file_member(root: Path, path: Path) -> Member:
    return Member(path.relative_to(root).as_posix(), path.stat().st_size, path.read_bytes)


def _zip_reader(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Callable[[], bytes]:
    return lambda: archive.read(info)


# --------------------------------------------------------------------------- Qt resources

RCC_MAGIC = b"qres"
RCC_DIRECTORY = 0x02
RCC_ZLIB = 0x01
RCC_ZSTD = 0x04


def rcc_files(data: bytes) -> Iterator[tuple[str, bytes]]:
    """(path, bytes) of every file in a Qt binary resource bundle (``rcc`` format 1-3).

    Layout: a 20-byte header (magic, version, tree/data/names offsets), a tree of fixed-size
    nodes (name offset, flags, then child count + first child index for a folder, or
    locale + data offset for a file; format 2+ adds an 8-byte modification time), names as
    length + hash + UTF-16BE, data as a 4-byte length + bytes (zlib-compressed files start
    with their 4-byte uncompressed size). Zstandard-compressed files are not decoded.
    """
    if len(data) < 20 or data[:4] != RCC_MAGIC:
        raise ValueError("not a Qt resource bundle (no 'qres' magic)")
    version, tree, payload, names = struct.unpack(">IIII", data[4:20])
    node_size = 22 if version >= 2 else 14

    def name_at(offset: int) -> str:
        (length,) = struct.unpack_from(">H", data, names + offset)
        start = names + offset + 6
        return data[start : start + 2 * length].decode("utf-16-be")

    stack = [(0, "")]
    while stack:
        index, prefix = stack.pop()
        base = tree + index * node_size
        name_offset, flags = struct.unpack_from(">IH", data, base)
        name = name_at(name_offset) if index else ""
        path = f"{prefix}/{name}" if prefix else name
        if flags & RCC_DIRECTORY:
            count, first = struct.unpack_from(">II", data, base + 6)
            stack.extend((child, path) for child in reversed(range(first, first + count)))
            continue
        (offset,) = struct.unpack_from(">I", data, base + 10)
        (size,) = struct.unpack_from(">I", data, payload + offset)
        body = data[payload + offset + 4 : payload + offset + 4 + size]
        if len(body) != size:
            raise ValueError(f"{path}: data runs past the end of the bundle")
        if flags & RCC_ZSTD:
            continue
        if flags & RCC_ZLIB:
            body = zlib.decompress(body[4:])
        yield path, body


def _rcc_members(rel: str, path: Path) -> list[Member]:
    members = []
    for inner, body in rcc_files(path.read_bytes()):
        if _safe_member(inner):
            members.append(Member(f"{rel}{ARCHIVE_SEP}{inner}", len(body), lambda b=body: b))
    return sorted(members, key=lambda m: m.path)


# --------------------------------------------------------------------------- C4Group, sample.cat

C4GROUP_SUFFIXES = (".ocg", ".ocd", ".ocf", ".ocs", ".c4g", ".c4d", ".c4f")


def _c4group_members(rel: str, path: Path) -> list[Member]:
    """The files of a packed C4Group; a group unpacked on disk is a folder (its files are
    plain members ``<group>/<path>``, so rules match both with ``[!/]`` after the group)."""
    group = unpack_stream(path.read_bytes())
    members = []
    for inner, start, size in group_entries(group):
        if _safe_member(inner):
            read = lambda g=group, a=start, n=size: g[a : a + n]  # noqa: E731
            members.append(Member(f"{rel}{ARCHIVE_SEP}{inner}", size, read))
    return sorted(members, key=lambda m: m.path)


def sample_cat_files(data: bytes) -> Iterator[tuple[str, bytes]]:
    """(name, WAV bytes) of every sample of a Transport Tycoon ``sample.cat`` (OpenSFX).

    Layout: a table of (offset, size) little-endian uint32 pairs, as many as the first
    offset / 8 (the top bit of an offset is a flag and is masked); each sample is a length
    byte, a NUL-terminated description of that length, then a RIFF/WAV file. The name given
    is ``NN_<first words of the description>.wav``; empty samples are left out.
    """
    if len(data) < 8:
        raise ValueError("not a sample catalogue (too short)")
    (first,) = struct.unpack_from("<I", data, 0)
    count = (first & 0x7FFFFFFF) // 8
    if count == 0 or count * 8 > len(data):
        raise ValueError("not a sample catalogue (bad table)")
    for index in range(count):
        offset, size = struct.unpack_from("<II", data, 8 * index)
        offset &= 0x7FFFFFFF
        if offset + size > len(data) or size < 1:
            raise ValueError(f"sample {index} runs past the end of the catalogue")
        length = data[offset]
        text = data[offset + 1 : offset + 1 + length].split(b"\0", 1)[0].decode("latin-1")
        body = data[offset + 1 + length : offset + size]
        if body[:4] != b"RIFF":
            continue
        title = text.split('"')[1] if text.count('"') >= 2 else text
        slug = re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")[:48] or "sample"
        yield f"{index:02d}_{slug}.wav", body


def _sample_cat_members(rel: str, path: Path) -> list[Member]:
    return [
        Member(f"{rel}{ARCHIVE_SEP}{name}", len(body), lambda b=body: b)
        for name, body in sample_cat_files(path.read_bytes())
    ]


def iter_members(
    root: str | os.PathLike,
    archives: tuple[str, ...] = (),
    errors: list[str] | None = None,
) -> Iterator[Member]:
    """Every file under ``root`` (sorted), and the members of files whose relative path
    full-matches one of the ``archives`` regexes (``.rcc`` read as Qt resources, ``.ocg``
    ``.ocd`` ``.ocf`` ... as C4Groups, ``.cat`` as a sample catalogue, anything else as zip).
    An archive that does not open is noted in ``errors`` and skipped."""
    root = Path(root)
    patterns = [re.compile(p) for p in archives]
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
        rel = path.relative_to(root).as_posix()
        if not any(p.fullmatch(rel) for p in patterns):
            yield _file_member(root, path)
            continue
        if path.suffix == ".rcc":
            try:
                yield from _rcc_members(rel, path)
            except (ValueError, struct.error, zlib.error, OSError) as exc:
                if errors is not None:
                    errors.append(f"{rel}: not a readable Qt resource bundle: {exc}")
            continue
        if path.suffix.lower() in C4GROUP_SUFFIXES:
            try:
                yield from _c4group_members(rel, path)
            except (C4GroupError, struct.error, OSError) as exc:
                if errors is not None:
                    errors.append(f"{rel}: not a readable C4Group: {exc}")
            continue
        if path.suffix == ".cat":
            try:
                yield from _sample_cat_members(rel, path)
            except (ValueError, struct.error, OSError) as exc:
                if errors is not None:
                    errors.append(f"{rel}: not a readable sample catalogue: {exc}")
            continue
        try:
            archive = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            if errors is not None:
                errors.append(f"{rel}: not a readable zip archive: {exc}")
            continue
        # The archive stays open while any of its members' ``read`` is alive (the closures
        # hold it); it is closed when the last of them is collected.
        for info in sorted(archive.infolist(), key=lambda i: i.filename):
            if info.is_dir() or not _safe_member(info.filename):
                continue
            yield Member(
                f"{rel}{ARCHIVE_SEP}{info.filename}", info.file_size, _zip_reader(archive, info)
            )


# --------------------------------------------------------------------------- licences

_TEXT_LICENCES = (
    (re.compile(r"Creative Commons Attribution[- ]Share ?Alike\W+(\d\.\d)", re.I), "CC-BY-SA-{}"),
    (re.compile(r"creativecommons\.org/licenses/by-sa/(\d\.\d)", re.I), "CC-BY-SA-{}"),
    (re.compile(r"Creative Commons Attribution\W+(\d\.\d)", re.I), "CC-BY-{}"),
    (
        re.compile(
            r"GNU General Public License.{0,200}?version (\d)[^.]{0,80}any later", re.I | re.S
        ),
        "GPL-{}+",
    ),
    (re.compile(r"common-licenses/GPL-(\d)"), "GPL-{}"),
)


@dataclass(frozen=True)
class Stanza:
    files: tuple[str, ...]
    license: str


def parse_copyright(text: str) -> list[Stanza]:
    """``Files:`` stanzas of a machine-readable (DEP-5) Debian copyright file, in order
    (``debian/*`` packaging stanzas left out)."""
    stanzas = []
    for paragraph in re.split(r"\n\s*\n", text):
        fields_ = {}
        for match in re.finditer(r"^(Files|License):[ \t]*(.*(?:\n[ \t]+.*)*)", paragraph, re.M):
            fields_.setdefault(match.group(1), match.group(2))
        if "Files" not in fields_ or "License" not in fields_:
            continue
        files = tuple(fields_["Files"].split())
        licence = fields_["License"].splitlines()[0].strip()
        if files and licence and not all(f.startswith("debian/") for f in files):
            stanzas.append(Stanza(files, licence))
    return stanzas


def _pattern_match_score(pattern: str, path: str) -> int:
    """How specifically a DEP-5 ``Files`` glob (a source-tree path) matches an installed
    member path: the count of literal characters of the matching part, -1 for no match. The
    glob is tried as a path suffix, then with its leading folders dropped (the installed layout
    differs from the source tree), keeping at least two components; a bare ``*`` scores 0."""
    parts = pattern.split("/")
    for drop in range(max(1, len(parts) - 1)):
        tail = "/".join(parts[drop:])
        if tail == "*" and drop:
            break
        if fnmatch.fnmatchcase(path, tail) or fnmatch.fnmatchcase(path, f"*/{tail}"):
            return len(tail.replace("*", "").replace("?", ""))
    return -1


def licence_from_text(text: str) -> str:
    """Short licence names found in a free-form copyright text, in order of appearance."""
    found = []
    for pattern, template in _TEXT_LICENCES:
        for match in pattern.finditer(text):
            found.append((match.start(), template.format(match.group(1))))
    names = []
    for _, name in sorted(found):
        if name not in names:
            names.append(name)
    return names[0] if names else ""


def member_licence(copyright_text: str, member_path: str, stanza: str = "") -> str:
    """The licence of one member: the DEP-5 stanza whose ``Files`` pattern matches it most
    specifically (the later one on a tie), or the stanza listing the pattern ``stanza`` when
    given (for copyright files whose patterns name the source tree only); else the first
    licence named in a free-form text; "" when none is found."""
    stanzas = parse_copyright(copyright_text)
    if not stanzas:
        return licence_from_text(copyright_text)
    if stanza:
        named = [s for s in stanzas if stanza in s.files]
        if named:
            return named[-1].license
    path = member_path.replace(ARCHIVE_SEP, "/")
    best, licence = -1, stanzas[0].license
    for candidate in stanzas:
        score = max(_pattern_match_score(p, path) for p in candidate.files)
        if score >= 0 and score >= best:
            best, licence = score, candidate.license
    return licence


def copyright_text(root: str | os.PathLike, package: str) -> str:
    """A .deb's ``usr/share/doc/<package>/copyright``, or a wheel's licence metadata as
    ``License: <value>`` lines; "" when neither is there."""
    root = Path(root)
    deb_file = root / "usr/share/doc" / package / "copyright"
    if deb_file.is_file():
        return deb_file.read_text(encoding="utf-8", errors="replace")
    lines = []
    for metadata in sorted(root.glob("*.dist-info/METADATA")):
        message = email.parser.HeaderParser().parsestr(
            metadata.read_text(encoding="utf-8", errors="replace")
        )
        for key in ("License-Expression", "License"):
            if message.get(key):
                lines.append(f"Files: *\nLicense: {message[key].splitlines()[0].strip()}\n")
                break
    return "\n".join(lines)
