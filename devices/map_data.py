"""What a map page needs to know: the tile server, and each site's position and floor plan."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse

from .models import Site
from .positions import valid_bounds

DEFAULT_TILE_URL = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
DEFAULT_TILE_ATTRIBUTION = "&copy; OpenStreetMap contributors"


def map_settings() -> dict:
    """Tiles from ``EYESCREAM_TILE_URL`` (empty or "none": no tiles, the map still works)."""
    url = getattr(settings, "EYESCREAM_TILE_URL", DEFAULT_TILE_URL) or ""
    if url.strip().lower() == "none":
        url = ""
    return {
        "tile_url": url,
        "tile_attribution": getattr(
            settings, "EYESCREAM_TILE_ATTRIBUTION", DEFAULT_TILE_ATTRIBUTION
        ),
        "ws_path": "/ws/alerts/",
    }


def site_dict(site: Site) -> dict:
    has_plan = bool(site.floor_plan) and valid_bounds(site.floor_plan_bounds)
    return {
        "id": site.pk,
        "name": site.name,
        "latitude": site.latitude,
        "longitude": site.longitude,
        "floor_plan_url": reverse("devices:floor-plan", args=[site.pk]) if has_plan else None,
        "floor_plan_bounds": site.floor_plan_bounds if has_plan else None,
    }
