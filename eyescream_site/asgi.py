"""ASGI entry point: HTTP via Django, WebSockets via each app's routing."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eyescream_site.settings")
django_asgi_app = get_asgi_application()

from eyescream_site.cpu_priority import apply_live_priority  # noqa: E402

apply_live_priority()  # before the server's threads and the alert writers start: they inherit it

from eyescream_site import websocket_limits  # noqa: E402

websocket_limits.install()  # a message over daphne's own limit is answered 4032 too

from eyescream_site.recovery import recover_lost_streams  # noqa: E402

recover_lost_streams()  # alerts left open by a killed server are closed, not open forever

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ChannelNameRouter, ProtocolTypeRouter, URLRouter  # noqa: E402

from alerts.routing import websocket_urlpatterns as alert_routes  # noqa: E402
from live.routing import websocket_urlpatterns as device_routes  # noqa: E402
from live.scoring_worker import ScoringWorkerConsumer  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AuthMiddlewareStack(URLRouter(device_routes + alert_routes)),
        # ``manage.py runworker detection-score``: the scoring worker (scaled mode).
        "channel": ChannelNameRouter({"detection-score": ScoringWorkerConsumer.as_asgi()}),
    }
)
