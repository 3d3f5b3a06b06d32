"""``/metrics``: who may read it, and what is read from the database and Redis at each scrape.

The live path's counters and histograms are in ``live.metrics``; Celery's task outcomes are
counted in ``eyescream_site.task_metrics``. Device and alert counts are not counted
by any one process: they are read from the database when Prometheus scrapes, so every daphne
reports the same, whole-deployment numbers.
"""

from __future__ import annotations

import hmac
import ipaddress
import os

import redis
from django.conf import settings
from django.db.models import Count
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import REGISTRY

import live.metrics  # noqa: F401  (its families are reported from the start, at zero)
from alerts.models import Alert
from devices.models import Device
from live.heartbeat import live_workers
from live.scoring_messages import SCORE_CHANNEL


def allowed(request) -> bool:
    """The bearer token when one is set, or a client address in the allowed networks."""
    token = settings.EYESCREAM_METRICS_TOKEN
    given = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(
        address in ipaddress.ip_network(network, strict=False)
        for network in settings.EYESCREAM_METRICS_NETWORKS
    )


class DeploymentCollector:
    """Devices by connection state, alerts by status; scoring workers alive and the scoring
    channel's queue (scaled mode)."""

    def collect(self):
        devices = GaugeMetricFamily(
            "eyescream_devices", "Enabled devices by connection state", labels=["state"]
        )
        rows = Device.objects.filter(enabled=True).values_list("connection_state")
        for state, count in rows.annotate(n=Count("id")).values_list("connection_state", "n"):
            devices.add_metric([state], count)
        yield devices
        alerts = GaugeMetricFamily("eyescream_alerts", "Stored alerts by status", labels=["status"])
        counts = dict(Alert.objects.values_list("status").annotate(n=Count("id")))
        for status, _ in Alert.STATUSES:
            alerts.add_metric([status], counts.get(status, 0))
        yield alerts
        if settings.REDIS_URL:
            try:
                alive = len(live_workers(settings.REDIS_URL))
            except Exception:
                alive = 0
            yield GaugeMetricFamily(
                "eyescream_scoring_workers_alive", "Scoring workers with a fresh heartbeat", alive
            )
            depth = GaugeMetricFamily(
                "eyescream_channel_queue_depth",
                "Messages waiting in a channel-layer channel (Redis)",
                labels=["channel"],
            )
            try:
                depth.add_metric([SCORE_CHANNEL], channel_depth(SCORE_CHANNEL))
            except redis.RedisError:
                pass
            yield depth


def channel_depth(channel: str) -> int:
    """Messages waiting in a normal (not process-local) channel: channels_redis keeps them in the
    sorted set ``<prefix><channel>`` (one Redis host, as settings.py configures the layer)."""
    prefix = settings.CHANNEL_LAYERS["default"].get("CONFIG", {}).get("prefix", "asgi")
    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        return client.zcard(prefix + channel)
    finally:
        client.close()


def exposition() -> bytes:
    """The text format: this host's processes (multiprocess mode) or this process, then the
    deployment's numbers."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        processes = CollectorRegistry()
        MultiProcessCollector(processes)
    else:
        processes = REGISTRY
    deployment = CollectorRegistry()
    deployment.register(DeploymentCollector())
    return generate_latest(processes) + generate_latest(deployment)
