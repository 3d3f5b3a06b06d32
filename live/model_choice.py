"""Which registered model version scores a stream: the registry's active choice, cached.

``ModelResolver.current(site_id)`` answers at once from a cache that a background task
refreshes from the database every ``EYESCREAM_MODEL_REFRESH_S`` (one query, in a thread: the
event loop never waits for the database). Streams ask before each batch of windows, so a
promotion or rollback reaches every stream of the process within about a second, between two
of its windows (``stream_scoring.StreamScoring.push``).

A version becomes the answer only once it is ready where it will run: in embedded mode its
network is loaded in this process's scorer first; in scaled mode each scoring worker keeps the
active versions loaded (``scoring_worker``) and the ingest processes wait ``SETTLE_S`` more
before they ask for it (a request that meets a worker still loading is answered a little late
or scored inline: late, never lost).

With an empty registry (a database before its first migrate) the answer is
``settings.EYESCREAM_MODEL_DIR`` with no version number.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path

from channels.db import database_sync_to_async
from django.conf import settings

from detection.artifact_config import ArtifactError, read_model_config
from detection.features import FeatureConfig
from detection.scoring import features_key, shared_scorer
from registry.services import active_choices

from .second_opinion import prepare_second_opinion

log = logging.getLogger(__name__)

SETTLE_S = 2.0  # scaled mode: the workers' refresh and load of a new version


@dataclass(frozen=True)
class ModelChoice:
    number: int | None  # registry version; None: the unregistered EYESCREAM_MODEL_DIR
    path: Path
    features_key: str  # what a stream's windows must have been computed with
    config: dict = field(default_factory=dict, compare=False)  # its config.json

    @classmethod
    def of(cls, number: int | None, path: str | Path) -> ModelChoice:
        config = read_model_config(path)
        key = features_key(FeatureConfig.from_dict(config["features"]))
        return cls(number, Path(path), key, config)


def fallback_choice() -> ModelChoice | None:
    try:
        return ModelChoice.of(None, settings.EYESCREAM_MODEL_DIR)
    except ArtifactError:
        return None


def read_choices() -> dict[int | None, tuple[int, str]]:
    """``{None: (number, path), site_id: (number, path)}`` from the registry (a thread)."""
    return {scope: (v.number, v.path) for scope, v in active_choices().items()}


class ModelResolver:
    def __init__(self, refresh_s: float, embedded: bool) -> None:
        self.refresh_s = refresh_s
        self.embedded = embedded
        self.refreshes = 0
        self._choices: dict[int | None, ModelChoice] = {}
        self._known: dict[int, ModelChoice] = {}  # by version number: artifacts are immutable
        self._seen_at: dict[int, float] = {}  # when a number was first seen active
        self._fetched_at = -1e9
        self._refreshing: asyncio.Task | None = None
        self._fallback = fallback_choice()

    def current(self, site_id: int | None) -> ModelChoice | None:
        """The version for ``site_id`` now (never waits; starts a refresh when due)."""
        if time.monotonic() - self._fetched_at >= self.refresh_s:
            self._start_refresh()
        choice = self._choices.get(site_id) if site_id is not None else None
        return choice or self._choices.get(None) or self._fallback

    async def ready(self) -> None:
        """Refresh now unless the cache is fresh (a stream's start)."""
        if time.monotonic() - self._fetched_at >= self.refresh_s:
            self._start_refresh()
        if self._refreshing is not None:
            await asyncio.shield(self._refreshing)

    def _start_refresh(self) -> None:
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.get_running_loop().create_task(self._refresh())

    async def _refresh(self) -> None:
        try:
            rows = await database_sync_to_async(read_choices, thread_sensitive=False)()
        except Exception as exc:  # the database away: keep serving the versions known
            log.warning("model choice: cannot read the registry: %s", exc)
            self._fetched_at = time.monotonic()
            return
        choices: dict[int | None, ModelChoice] = {}
        now = time.monotonic()
        for scope, (number, path) in rows.items():
            choice = self._known.get(number)
            if choice is None:
                try:
                    choice = await asyncio.to_thread(ModelChoice.of, number, path)
                    if self.embedded:  # load the network before any stream asks for it
                        await shared_scorer(choice.path).ensure_loaded()
                    if choice.config.get("second_stage"):  # streams switch without waiting
                        await asyncio.to_thread(prepare_second_opinion)
                except Exception as exc:
                    log.error("model version %s at %s cannot be used: %s", number, path, exc)
                    continue
                self._known[number] = choice
                self._seen_at[number] = now
            if self.embedded or not self._choices or now - self._seen_at[number] >= SETTLE_S:
                choices[scope] = choice
            elif scope in self._choices:  # not settled yet: the previous answer a little longer
                choices[scope] = self._choices[scope]
        if choices != self._choices:
            log.info(
                "active model versions: %s",
                {k or "global": v.number for k, v in choices.items()},
            )
        self._choices = choices
        self._fetched_at = time.monotonic()
        self.refreshes += 1


_RESOLVERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def shared_resolver() -> ModelResolver:
    """The process's resolver (one per event loop)."""
    loop = asyncio.get_running_loop()
    resolver = _RESOLVERS.get(loop)
    if resolver is None:
        resolver = _RESOLVERS[loop] = ModelResolver(
            float(getattr(settings, "EYESCREAM_MODEL_REFRESH_S", 1.0)),
            embedded=not getattr(settings, "REDIS_URL", ""),
        )
    return resolver
