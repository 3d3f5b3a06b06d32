"""What ``/readyz`` checks: can this deployment take audio and turn screams into alerts?

Each check returns ``Check(ok, detail)``; ``detail`` names the problem without secrets
(exception class and a short text, never a URL with its password). In the scaled mode
(``REDIS_URL``) Redis, at least one scoring worker by heartbeat (``live.heartbeat``) and a
Celery worker answering a ping are checked as well; in the embedded mode the scorer and the
tasks run in this process.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass

import redis
from django.conf import settings
from django.db import connection, connections

from detection.artifact_config import WEIGHTS_FILE, ArtifactError, read_model_config
from eyescream_site.celery import app as celery_app
from live.heartbeat import live_workers
from registry.services import active_version

TIMEOUT_S = 1.0
CACHE_S = 2.0  # answers within this share one round of checks (every dashboard polls /readyz)


@dataclass
class Check:
    ok: bool
    detail: str
    # Failed, but the work is still done another way (slower): e.g. no scoring worker, and
    # the web servers score the audio themselves (``live.scoring_client``).
    fallback: bool = False

    def as_dict(self) -> dict:
        return asdict(self)


def _failure(exc: BaseException) -> str:
    text = str(exc).split("\n", 1)[0][:160]
    for secret in (settings.DATABASES["default"].get("PASSWORD"), _redis_password()):
        if secret:
            text = text.replace(secret, "***")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _redis_password() -> str:
    if not settings.REDIS_URL:
        return ""
    return redis.connection.parse_url(settings.REDIS_URL).get("password") or ""


def check_database() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:
        return Check(False, _failure(exc))
    return Check(True, connection.vendor)


def check_redis() -> Check:
    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=TIMEOUT_S, socket_timeout=TIMEOUT_S
    )
    try:
        client.ping()
    except Exception as exc:
        return Check(False, _failure(exc))
    finally:
        client.close()
    return Check(True, "ping answered")


def check_model() -> Check:
    """The registry's global active version (or, with an empty or unreadable registry, the
    shipped model) is there and readable (the network itself loads in the scorer)."""
    try:
        version = active_version()
    except Exception:  # no registry table yet, or the database away (its own check says why)
        version = None
    model_dir = version.model_dir if version is not None else settings.EYESCREAM_MODEL_DIR
    try:
        config = read_model_config(model_dir)
        if (model_dir / WEIGHTS_FILE).stat().st_size == 0:
            return Check(False, f"{WEIGHTS_FILE} is empty")
    except (ArtifactError, OSError, ValueError) as exc:
        return Check(False, _failure(exc))
    if version is not None:
        return Check(True, f"version {version.number} ({version.digest})")
    return Check(True, str(config.get("version") or model_dir.name))


def check_scoring_workers() -> Check:
    try:
        workers = live_workers(settings.REDIS_URL, TIMEOUT_S)
    except Exception as exc:
        return Check(False, _failure(exc))
    if not workers:
        return Check(
            False,
            "no scoring worker heartbeat: the web servers score the audio themselves, "
            "alerts may come seconds late",
            fallback=True,
        )
    return Check(True, f"{len(workers)} scoring worker(s) alive")


def check_celery() -> Check:
    try:
        replies = celery_app.control.ping(timeout=TIMEOUT_S, limit=1)  # the first answer does
    except Exception as exc:
        return Check(False, _failure(exc))
    if not replies:
        return Check(False, "no Celery worker answered a ping")
    return Check(True, "a Celery worker answered")


def run_checks() -> dict[str, Check]:
    checks = {"database": check_database(), "model": check_model()}
    if settings.REDIS_URL:
        checks["redis"] = check_redis()
        checks["scoring"] = (
            check_scoring_workers() if checks["redis"].ok else Check(False, "no Redis")
        )
        checks["celery"] = check_celery() if checks["redis"].ok else Check(False, "no Redis")
    else:
        checks["scoring"] = Check(checks["model"].ok, "in this process (embedded mode)")
    return checks


_cache_lock = threading.Lock()
_cached: tuple[float, dict[str, Check]] | None = None


def checks_now() -> dict[str, Check]:
    """``run_checks`` at most once per ``CACHE_S``; for a thread of its own (``/readyz`` runs it
    off the event loop and off the thread Django's sync code shares, which a check that waits
    for its timeout would hold up), whose database connection it closes."""
    global _cached
    with _cache_lock:
        if _cached is not None and time.monotonic() - _cached[0] < CACHE_S:
            return _cached[1]
        try:
            checks = run_checks()
        finally:
            connections.close_all()  # this thread's connections only
        _cached = (time.monotonic(), checks)
        return checks
