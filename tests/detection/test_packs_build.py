"""The pack builder end to end on a .deb and a wheel made here (no network)."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from detection.dataset import read_labels, scan
from detection.packs import fetch as fetch_module
from detection.packs.build import build, clip_stem
from detection.packs.catalogue import Pack, PackageSpec, Rule
from detection.packs.convert import pcm_sha256, read_pcm16
from detection.packs.fetch import PYPI
from detection.packs.manifest import COLUMNS, read_manifest
from detection.packs.report import pack_rows, summarise

from .packs_fixtures import (
    DEB_NAME,
    DEB_VERSION,
    FIXTURE_PACK,
    SOUNDS,
    WHEEL_NAME,
    WHEEL_VERSION,
    make_deb,
    make_wheel,
)

pytestmark = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    work = tmp_path_factory.mktemp("packs")
    cache, out = work / "cache", work / "out"
    make_deb(work, cache)
    make_wheel(cache)
    messages: list[str] = []
    summary = build(out=out, cache=cache, packs=(FIXTURE_PACK,), log=messages.append)
    return {"cache": cache, "out": out, "summary": summary, "root": out / "fixture"}


def _rows(root: Path) -> dict[str, object]:
    return {row.member_path.rsplit("/", 1)[-1]: row for row in read_manifest(root / "manifest.csv")}


def test_members_are_extracted_converted_and_screened(built):
    rows = _rows(built["root"])
    assert set(rows) == {
        "scream_sweep.wav",
        "grunt_low.ogg",
        "noise_burst.wav",
        "laugh_kept.wav",
        "whistle.wav",
    }
    assert rows["scream_sweep.wav"].class_ == "1"
    assert rows["scream_sweep.wav"].subcategory == "cry"
    for failed in ("grunt_low.ogg", "noise_burst.wav"):
        assert rows[failed].class_ == "0_0"
        assert rows[failed].subcategory == "yell_grunt"
    assert rows["laugh_kept.wav"].class_ == "0_0"
    assert rows["whistle.wav"].class_ == "0_1"
    screen_log = (built["root"] / "screen.csv").read_text()
    assert "scream_sweep" in screen_log and "grunt_low" in screen_log


def test_manifest_rows_record_package_licence_member_and_checksum(built):
    root = built["root"]
    header = (root / "manifest.csv").read_text().splitlines()[0]
    assert tuple(header.split(",")) == COLUMNS
    rows = _rows(root)
    sweep = rows["scream_sweep.wav"]
    assert sweep.source == sweep.package == DEB_NAME
    assert sweep.package_version == DEB_VERSION
    assert sweep.member_path == f"{SOUNDS}/scream_sweep.wav"
    assert sweep.license == "CC-BY-SA-3.0"
    assert sweep.group == f"{DEB_NAME}:v-scream_sweep"
    assert sweep.path == f"audio/{DEB_NAME}/{clip_stem(sweep.member_path)}.flac"
    whistle = rows["whistle.wav"]
    assert (whistle.package_version, whistle.license) == (WHEEL_VERSION, "CC0-1.0; sounds CC0")
    for row in rows.values():
        pcm = read_pcm16(root / row.path)
        assert row.sha256_of_decoded_pcm == pcm_sha256(pcm)
        assert row.duration_s == pytest.approx(len(pcm) / 22_050, abs=1e-3)
        assert row.pack == "fixture"


def test_label_files_cover_each_clip_with_its_class(built):
    root = built["root"]
    for row in _rows(root).values():
        segments = read_labels(root / row.label_file)
        assert len(segments) == 1
        assert segments[0].label == row.class_
        assert segments[0].start == 0.0
        assert segments[0].end == pytest.approx(row.duration_s, abs=1e-3)


def test_scan_reads_the_pack_with_its_groups(built):
    result = scan(built["root"])
    assert not result.unlabelled
    groups = {r.rel: r.group for r in result.recordings}
    assert groups == {row.path: row.group for row in _rows(built["root"]).values()}
    combined = scan(built["out"])
    assert {r.group for r in combined.recordings} == set(groups.values())


def test_corrupt_members_are_skipped_with_a_message(built):
    summary = built["summary"].packs["fixture"]
    assert summary.new == 5 and not summary.failed
    skipped = "\n".join(summary.skipped)
    assert "garbage.wav: cannot decode" in skipped
    assert "truncated.ogg" in skipped
    assert not list(built["root"].rglob("*garbage*")) and not list(built["root"].rglob(".*"))


def test_second_build_changes_nothing(built):
    root = built["root"]
    files = sorted(p for p in root.rglob("*") if p.is_file())
    before = {p: p.stat().st_mtime_ns for p in files}
    summary = build(out=built["out"], cache=built["cache"], packs=(FIXTURE_PACK,))
    pack = summary.packs["fixture"]
    assert (pack.new, pack.unchanged, pack.removed) == (0, 5, 0)
    assert sorted(p for p in root.rglob("*") if p.is_file()) == files
    assert {p: p.stat().st_mtime_ns for p in files} == before


def test_a_changed_clip_is_redone(built, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(built["out"], out)
    row = _rows(out / "fixture")["scream_sweep.wav"]
    (out / "fixture" / row.path).write_bytes(b"damaged")
    summary = build(out=out, cache=built["cache"], packs=(FIXTURE_PACK,))
    assert (summary.packs["fixture"].new, summary.packs["fixture"].unchanged) == (1, 4)
    assert pcm_sha256(read_pcm16(out / "fixture" / row.path)) == row.sha256_of_decoded_pcm


def test_a_failed_download_is_reported_and_the_rest_built(built, tmp_path, monkeypatch):
    monkeypatch.setattr(fetch_module, "_download_command", lambda *args: ["false"])
    missing = PackageSpec("eyescream-not-in-cache", kind=PYPI)
    pack = Pack("fixture", "with a missing package", (*FIXTURE_PACK.packages, missing))
    out = tmp_path / "out"
    summary = build(out=out, cache=built["cache"], packs=(pack,))
    result = summary.packs["fixture"]
    assert not summary.ok
    assert result.failed and result.failed[0].startswith("eyescream-not-in-cache: download failed")
    assert result.new == 5
    assert len(read_manifest(out / "fixture" / "manifest.csv")) == 5


def test_a_wheel_is_downloaded_into_a_relative_cache(tmp_path, monkeypatch):
    """Real ``pip download`` (from a local folder instead of PyPI) into the default kind of
    cache, a path relative to the working directory: the wheel lands in the cache."""
    index = tmp_path / "index"
    wheel = make_wheel(index)
    monkeypatch.chdir(tmp_path)
    real = fetch_module._download_command
    monkeypatch.setattr(
        fetch_module,
        "_download_command",
        lambda *args: [*real(*args), "--no-index", "--find-links", str(index)],
    )
    result = fetch_module.fetch(WHEEL_NAME, PYPI, Path("var/cache/packages"))
    assert result.error == "", result.error
    assert result.path.name == wheel.name and result.path.read_bytes() == wheel.read_bytes()
    assert (tmp_path / "var/cache/packages" / wheel.name).is_file()


def test_report_counts_equal_the_manifest(built):
    rows = read_manifest(built["root"] / "manifest.csv")
    summary = summarise(pack_rows(built["out"]))["fixture"]
    assert summary["clips"] == len(rows)
    for cls in {r.class_ for r in rows}:
        mine = [r for r in rows if r.class_ == cls]
        assert summary["classes"][cls]["clips"] == len(mine)
        assert summary["classes"][cls]["minutes"] == pytest.approx(
            sum(r.duration_s for r in mine) / 60, abs=0.01
        )
    per_source = {
        (source, cls): counts["clips"]
        for source, classes in summary["sources"].items()
        for cls, counts in classes.items()
    }
    assert sum(per_source.values()) == len(rows)
    assert per_source[(WHEEL_NAME, "0_1")] == 1


def test_the_packs_package_imports_no_django():
    code = (
        "import sys; sys.modules['django'] = None; "
        "import detection.packs.build, detection.packs.report; "
        "print(sorted(m for m in sys.modules if m.startswith('django') and sys.modules[m]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_packs_report_command_prints_the_counts(built):
    stdout = io.StringIO()
    call_command("packs", "report", "--out", str(built["out"]), stdout=stdout)
    text = stdout.getvalue()
    assert "## fixture: 5 clips" in text
    assert f"| {WHEEL_NAME} | - | - | 1 / " in text
    stdout = io.StringIO()
    call_command("packs", "report", "--out", str(built["out"]), "--json", stdout=stdout)
    assert json.loads(stdout.getvalue())["fixture"]["clips"] == 5


def test_packs_command_refuses_unknown_packs_and_empty_folders(tmp_path):
    with pytest.raises(CommandError, match="unknown pack"):
        call_command("packs", "build", "--only", "nope", "--out", str(tmp_path))
    with pytest.raises(CommandError, match="no packs under"):
        call_command("packs", "report", "--out", str(tmp_path))


def test_catalogue_changes_reach_unchanged_clips_without_converting_again(built, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(built["out"], out)
    deb, wheel = FIXTURE_PACK.packages
    relabelled = Rule(SOUNDS + r"/(?P<name>laugh_kept)\.wav", "0_2", "chatter", "{name}")
    changed = Pack(
        "fixture", "relabelled", (replace(deb, rules=(relabelled, *deb.rules[1:])), wheel)
    )
    row = _rows(out / "fixture")["laugh_kept.wav"]
    flac = out / "fixture" / row.path
    mtime = flac.stat().st_mtime_ns
    summary = build(out=out, cache=built["cache"], packs=(changed,))
    assert (summary.packs["fixture"].new, summary.packs["fixture"].unchanged) == (0, 5)
    after = _rows(out / "fixture")["laugh_kept.wav"]
    assert (after.class_, after.subcategory) == ("0_2", "chatter")
    assert [s.label for s in read_labels(out / "fixture" / after.label_file)] == ["0_2"]
    assert flac.stat().st_mtime_ns == mtime
