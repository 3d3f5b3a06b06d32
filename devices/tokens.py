"""Device tokens: random secrets shown once, stored only as a keyed hash (no Django needed)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

PREFIX = "esd_"
TOKEN_BYTES = 32


def new_token() -> str:
    """A fresh token: ``esd_`` + 32 random bytes, URL-safe base64 (43 characters)."""
    return PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str, key: str | bytes) -> str:
    """HMAC-SHA256 of the token under the server's secret key, as 64 hex digits."""
    key_bytes = key.encode() if isinstance(key, str) else key
    return hmac.new(key_bytes, token.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def token_matches(token: str, stored_hash: str | None, key: str | bytes) -> bool:
    """Constant-time check of a presented token against a stored hash."""
    if not stored_hash:
        return False
    return hmac.compare_digest(hash_token(token, key), stored_hash)
