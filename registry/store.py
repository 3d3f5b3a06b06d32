"""The model store: where registered artifacts' files live, and their checksum.

``EYESCREAM_MODEL_STORE`` (default ``MEDIA_ROOT/models``) holds one folder per version,
``v<N>/``, copied there at registration and never changed afterwards. Scoring workers on
other hosts need the same store at the same path (a shared volume).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings

from detection.artifact_config import CONFIG_FILE, WEIGHTS_FILE


def store_root() -> Path:
    configured = getattr(settings, "EYESCREAM_MODEL_STORE", None)
    return Path(configured) if configured else Path(settings.MEDIA_ROOT) / "models"


def version_dir(number: int) -> Path:
    """Where version ``number``'s files are (``alerts.tasks.model_dir_of`` follows this
    layout: ``alerts`` sits below the registry)."""
    return store_root() / f"v{number}"


@contextmanager
def store_lock():
    """One registration at a time in this store (an exclusive lock on ``store/.lock``), so
    two never copy into the same ``v<N>``."""
    root = store_root()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def artifact_checksum(folder: str | os.PathLike) -> str:
    """sha256 (hex) of ``weights.pt`` followed by ``config.json``: what registration checks."""
    digest = hashlib.sha256()
    for name in (WEIGHTS_FILE, CONFIG_FILE):
        with open(Path(folder, name), "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def copy_into_store(source: Path, number: int, checksum: str) -> Path:
    """Copy the artifact folder to ``store/v<number>`` (staged, then renamed) and return it.

    A folder already there with the same checksum (a database emptied and migrated again) is
    kept; one with other content is moved aside (``v<N>.replaced-<time>``), never deleted.
    """
    root = store_root()
    root.mkdir(parents=True, exist_ok=True)
    target = version_dir(number)
    if target.exists():
        try:
            if artifact_checksum(target) == checksum:
                return target
        except OSError:
            pass
        target.rename(root / f"v{number}.replaced-{time.time_ns()}")
    staging = root / f".v{number}.staging-{os.getpid()}-{time.time_ns()}"
    shutil.copytree(source, staging, ignore=shutil.ignore_patterns(".*", "__pycache__"))
    if artifact_checksum(staging) != checksum:
        shutil.rmtree(staging, ignore_errors=True)
        raise OSError(f"the copy of {source} in {staging} does not match its checksum")
    staging.rename(target)
    return target
