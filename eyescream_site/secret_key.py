"""This installation's own secret key, made once and kept in its data folder.

``DJANGO_SECRET_KEY`` from the environment wins. Without it, a random key is created at the first
start in ``DATA_DIR/secret_key`` (readable by its owner only) and read by every later start and
every process sharing the folder, so no two installations share a key and none is in the code.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def load_or_create(path: Path) -> str:
    """The key stored at ``path``, created there first if missing (safe against a race)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_text().strip()
        if not key:
            raise RuntimeError(f"{path} is empty: delete it or set DJANGO_SECRET_KEY") from None
        return key
    key = secrets.token_urlsafe(50)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key
