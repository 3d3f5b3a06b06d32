"""Counts of built packs: clips and minutes per pack, source, class and sub-category."""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from detection.dataset import LABELS

from .manifest import MANIFEST, ManifestRow, read_manifest


@dataclass(frozen=True)
class Count:
    clips: int
    seconds: float

    @property
    def minutes(self) -> float:
        return self.seconds / 60.0


def pack_rows(out: str | os.PathLike) -> dict[str, list[ManifestRow]]:
    """Manifest rows of every pack folder under ``out`` (by pack folder name)."""
    out = Path(out)
    return {m.parent.name: read_manifest(m) for m in sorted(out.glob(f"*/{MANIFEST}"))}


def _count(rows: list[ManifestRow], key) -> dict[tuple, Count]:
    clips: dict[tuple, int] = defaultdict(int)
    seconds: dict[tuple, float] = defaultdict(float)
    for row in rows:
        k = key(row)
        clips[k] += 1
        seconds[k] += row.duration_s
    return {k: Count(clips[k], seconds[k]) for k in sorted(clips)}


def summarise(packs: dict[str, list[ManifestRow]]) -> dict:
    """A JSON-ready summary: per pack, per source and class, per class and sub-category."""
    result = {}
    for name, rows in packs.items():
        by_source = _count(rows, lambda r: (r.source, r.class_))
        by_sub = _count(rows, lambda r: (r.class_, r.subcategory))
        by_class = _count(rows, lambda r: (r.class_,))
        result[name] = {
            "clips": len(rows),
            "minutes": round(sum(r.duration_s for r in rows) / 60.0, 2),
            "classes": {k[0]: _as_json(c) for k, c in by_class.items()},
            "sources": _nest(by_source),
            "subcategories": _nest(by_sub),
            "licences": sorted({(r.source, r.license) for r in rows}),
        }
    return result


def _as_json(count: Count) -> dict:
    return {"clips": count.clips, "minutes": round(count.minutes, 2)}


def _nest(counts: dict[tuple, Count]) -> dict:
    nested: dict[str, dict] = defaultdict(dict)
    for (outer, inner), count in counts.items():
        nested[outer][inner] = _as_json(count)
    return dict(nested)


def _cell(counts: dict, label: str) -> str:
    c = counts.get(label)
    return f"{c['clips']} / {c['minutes']:.1f}" if c else "-"


def format_tables(summary: dict) -> str:
    """Markdown tables: per pack, sources x classes (clips / minutes), then sub-categories."""
    lines = []
    totals = {label: [0, 0.0] for label in LABELS}
    for name, pack in summary.items():
        lines += [f"## {name}: {pack['clips']} clips, {pack['minutes']:.1f} min", ""]
        lines += ["| source | " + " | ".join(LABELS) + " |", "|---" * (len(LABELS) + 1) + "|"]
        for source, counts in sorted(pack["sources"].items()):
            lines.append(f"| {source} | " + " | ".join(_cell(counts, lb) for lb in LABELS) + " |")
        lines.append(
            "| **all** | " + " | ".join(_cell(pack["classes"], lb) for lb in LABELS) + " |"
        )
        for label, c in pack["classes"].items():
            totals[label][0] += c["clips"]
            totals[label][1] += c["minutes"]
        lines += ["", "| class | subcategory | clips | minutes |", "|---|---|---|---|"]
        for label, subs in sorted(pack["subcategories"].items()):
            for sub, c in sorted(subs.items()):
                lines.append(f"| {label} | {sub} | {c['clips']} | {c['minutes']:.1f} |")
        lines.append("")
    licences: dict[str, set[str]] = defaultdict(set)
    for pack in summary.values():
        for source, licence in pack["licences"]:
            licences[source].add(licence)
    lines += ["## licences", "", "| source | licence(s) |", "|---|---|"]
    lines += [f"| {s} | {', '.join(sorted(licences[s]))} |" for s in sorted(licences)]
    lines += ["", "## all packs (clips / minutes)", ""]
    lines += ["| " + " | ".join(LABELS) + " |", "|---" * len(LABELS) + "|"]
    lines.append("| " + " | ".join(f"{c} / {m:.1f}" for c, m in totals.values()) + " |")
    return "\n".join(lines) + "\n"
