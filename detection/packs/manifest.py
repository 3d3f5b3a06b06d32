"""A pack's ``manifest.csv``: one row per clip, read and written atomically.

``path`` and ``label_file`` are relative to the pack folder, so ``detection.dataset.scan`` on
the pack folder finds each clip's ``group``.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from .convert import write_text_atomic

MANIFEST = "manifest.csv"


@dataclass(frozen=True)
class ManifestRow:
    path: str
    label_file: str
    pack: str
    source: str
    package: str
    package_version: str
    member_path: str
    license: str
    class_: str
    subcategory: str
    duration_s: float
    sha256_of_decoded_pcm: str
    group: str

    def as_csv(self) -> dict[str, str]:
        row = asdict(self)
        row["class"] = row.pop("class_")
        row["duration_s"] = f"{self.duration_s:.3f}"
        return {name: str(row[name]) for name in COLUMNS}


COLUMNS = tuple("class" if f.name == "class_" else f.name for f in fields(ManifestRow))


class ManifestError(ValueError):
    """A manifest that is not in this module's format."""


def row_from_csv(raw: dict[str, str], where: str = MANIFEST) -> ManifestRow:
    missing = [name for name in COLUMNS if name not in raw]
    if missing:
        raise ManifestError(f"{where}: missing column(s) {', '.join(missing)}")
    values = {("class_" if name == "class" else name): raw[name] for name in COLUMNS}
    try:
        values["duration_s"] = float(values["duration_s"])
    except ValueError:
        raise ManifestError(f"{where}: duration_s {raw['duration_s']!r} is not a number") from None
    return ManifestRow(**values)


def read_manifest(path: str | os.PathLike) -> list[ManifestRow]:
    """Rows of a manifest file ([] when it does not exist)."""
    path = Path(path)
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return [
            row_from_csv(raw, f"{path}, row {number}")
            for number, raw in enumerate(csv.DictReader(handle), start=2)
        ]


def format_manifest(rows: list[ManifestRow]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in sorted(rows, key=lambda r: r.path):
        writer.writerow(row.as_csv())
    return buffer.getvalue()


def write_manifest(path: str | os.PathLike, rows: list[ManifestRow]) -> bool:
    """Write the rows (sorted by path) atomically; False (file untouched) when unchanged."""
    path = Path(path)
    text = format_manifest(rows)
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    write_text_atomic(path, text)
    return True
