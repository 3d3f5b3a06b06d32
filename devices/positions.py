"""Where a location is drawn on the map: its own coordinates, its floor-plan spot, or its site's."""

from __future__ import annotations


def plan_to_latlng(x: float, y: float, bounds) -> tuple[float, float]:
    """Floor-plan fractions (x right, y down, 0..1) to map coordinates inside ``bounds``.

    ``bounds`` is ``[[south, west], [north, east]]`` (Leaflet order), where the image lies.
    """
    (south, west), (north, east) = bounds
    return north - y * (north - south), west + x * (east - west)


def latlng_to_plan(lat: float, lng: float, bounds) -> tuple[float, float]:
    (south, west), (north, east) = bounds
    return (lng - west) / (east - west), (north - lat) / (north - south)


def valid_bounds(bounds) -> bool:
    try:
        (south, west), (north, east) = bounds
        return float(north) > float(south) and float(east) > float(west)
    except (TypeError, ValueError):
        return False


def location_latlng(location, site) -> tuple[float | None, float | None]:
    """The point to draw: own lat/lon, else the floor-plan spot, else the site's lat/lon."""
    if location.latitude is not None and location.longitude is not None:
        return location.latitude, location.longitude
    if location.x is not None and location.y is not None and valid_bounds(site.floor_plan_bounds):
        return plan_to_latlng(location.x, location.y, site.floor_plan_bounds)
    return site.latitude, site.longitude
