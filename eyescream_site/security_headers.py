"""A Content-Security-Policy on every response: scripts from this site only.

Pages keep no inline script (page data travels as ``<script type="application/json">``, which is
not run), so ``script-src 'self'`` blocks any script that an injected name could smuggle in.
Images may come from the map's tile server (``EYESCREAM_TILE_URL``); audio and pictures from
``blob:`` and ``data:`` URLs the pages make; WebSockets only to this site. Styles allow inline
``style`` (the map library positions its layers with it). A view that sets its own policy keeps it.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings


def tile_source(tile_url: str) -> str:
    """The CSP source of a Leaflet tile URL template (``{s}`` subdomains as a wildcard)."""
    if not tile_url or tile_url.strip().lower() == "none":
        return ""
    parts = urlsplit(tile_url.replace("{s}", "*"))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return ""  # a relative URL: this site
    return f"{parts.scheme}://{parts.netloc}"


def policy(tile_url: str) -> str:
    images = " ".join(filter(None, ["'self'", "data:", "blob:", tile_source(tile_url)]))
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self' 'unsafe-inline'",
            f"img-src {images}",
            "media-src 'self' blob:",
            "connect-src 'self' ws: wss:",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.header = policy(getattr(settings, "EYESCREAM_TILE_URL", ""))

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", self.header)
        return response
