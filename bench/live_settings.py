"""The product's settings with a larger Redis connection pool for the channel layer.

redis-py 8 caps a connection pool at 100 connections and refuses the next command
(``MaxConnectionsError: Too many connections``) instead of waiting; channels_redis takes one
connection per command in flight, so one daphne with ~100 streams runs out (see
docs/performance.md). ``python -m bench.live_streams --redis-pool N`` runs daphne and the
scoring worker with these settings to measure the live path with the pool raised to N.
"""

import os

from eyescream_site.settings import *  # noqa: F403
from eyescream_site.settings import CHANNEL_LAYERS, REDIS_URL

if REDIS_URL:
    CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]["max_connections"] = int(
        os.environ.get("EYESCREAM_BENCH_REDIS_POOL", "1000")
    )

# ``--no-images``: no spectrogram pictures (a diagnostic: in embedded mode they are drawn in
# daphne's own process, on threads that compete with the event loop and the database thread).
if os.environ.get("EYESCREAM_BENCH_NO_IMAGES") == "1":
    EYESCREAM_ALERT_IMAGES = False
