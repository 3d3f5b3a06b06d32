"""The dashboard WebSocket, open only to pages of this site.

The dashboard authenticates with the session cookie, which a browser also sends when a page of
another site opens a WebSocket here (cross-site WebSocket hijacking). A browser always names the
page's origin, so a foreign ``Origin`` is refused (the handshake is denied, 403); an ``Origin``
must name one of ``ALLOWED_HOSTS``. A client that sends none is no browser and is let through to
the consumer's own role check.
"""

from channels.security.websocket import AllowedHostsOriginValidator, OriginValidator
from django.urls import path

from .consumers import DashboardConsumer


class SameSiteOrigin(OriginValidator):
    def valid_origin(self, parsed_origin) -> bool:
        return parsed_origin is None or super().valid_origin(parsed_origin)


def same_site_only(application):
    """``application`` behind an origin check against ``ALLOWED_HOSTS``."""
    allowed = AllowedHostsOriginValidator(application).allowed_origins
    return SameSiteOrigin(application, allowed)


websocket_urlpatterns = [
    path("ws/alerts/", same_site_only(DashboardConsumer.as_asgi())),
]
