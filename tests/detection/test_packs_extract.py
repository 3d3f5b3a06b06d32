"""Reading Qt resource bundles (gcompris ``.rcc``) and zip archives inside a package."""

from __future__ import annotations

import struct
import zipfile
import zlib

import pytest

from detection.packs.extract import iter_members, rcc_files


def _rcc(files: dict[str, tuple[bytes, bool]]) -> bytes:
    """A format-3 bundle holding ``files`` (name -> (bytes, zlib?)) in one folder "res"."""
    names, name_offsets = b"", {}
    for name in ["res", *files]:
        name_offsets[name] = len(names)
        encoded = name.encode("utf-16-be")
        names += struct.pack(">HI", len(name), 0) + encoded
    data, data_offsets = b"", {}
    for name, (body, compress) in files.items():
        data_offsets[name] = len(data)
        stored = struct.pack(">I", len(body)) + zlib.compress(body) if compress else body
        data += struct.pack(">I", len(stored)) + stored
    lastmod = b"\0" * 8
    tree = struct.pack(">IHII", 0, 2, 1, 1) + lastmod  # root: one child (node 1)
    tree += struct.pack(">IHII", name_offsets["res"], 2, len(files), 2) + lastmod
    for name, (_, compress) in files.items():
        tree += struct.pack(">IHHHI", name_offsets[name], 1 if compress else 0, 0, 0,
                            data_offsets[name]) + lastmod  # fmt: skip
    header = 24
    data_at, names_at = header, header + len(data)
    tree_at = names_at + len(names)
    return b"qres" + struct.pack(">IIIII", 3, tree_at, data_at, names_at, 0) + data + names + tree


def test_rcc_files_reads_stored_and_zlib_files():
    bundle = _rcc({"a.ogg": (b"OggS stored", False), "b.wav": (b"RIFF packed" * 20, True)})
    assert dict(rcc_files(bundle)) == {
        "res/a.ogg": b"OggS stored",
        "res/b.wav": b"RIFF packed" * 20,
    }
    with pytest.raises(ValueError, match="qres"):
        list(rcc_files(b"not a bundle at all"))


def test_iter_members_opens_rcc_and_zip_archives_and_reports_broken_ones(tmp_path):
    (tmp_path / "usr").mkdir()
    (tmp_path / "usr/plain.wav").write_bytes(b"RIFF")
    (tmp_path / "usr/bundle.rcc").write_bytes(_rcc({"x.ogg": (b"OggS", False)}))
    with zipfile.ZipFile(tmp_path / "usr/pak0.pk3", "w") as archive:
        archive.writestr("sound/y.wav", b"RIFF y")
    (tmp_path / "usr/broken.pk3").write_bytes(b"PK garbage")
    errors: list[str] = []
    members = {m.path: m for m in iter_members(tmp_path, (r".*\.pk3", r".*\.rcc"), errors)}
    assert set(members) == {
        "usr/plain.wav",
        "usr/bundle.rcc!res/x.ogg",
        "usr/pak0.pk3!sound/y.wav",
    }
    assert members["usr/pak0.pk3!sound/y.wav"].read() == b"RIFF y"
    assert members["usr/bundle.rcc!res/x.ogg"].read() == b"OggS"
    assert len(errors) == 1 and errors[0].startswith("usr/broken.pk3: not a readable zip")
