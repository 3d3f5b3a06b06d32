"""The ingest WebSocket: ``/ws/devices/stream/`` (protocol in docs/protocol.md).

A thin consumer over ``DeviceStream`` (all per-connection signal state), ``services``
(authentication) and ``health`` (batched statistics writes, acks and access checks).
"""

from __future__ import annotations

import asyncio
import json
import logging
from functools import cache

import numpy as np
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from detection.features import FeatureConfig, mel_columns
from detection.resampling import polyphase_plan
from devices import services
from devices.models import Device
from devices.protocol import (
    HELLO_TIMEOUT_S,
    Hello,
    ProtocolError,
    ack_message,
    capture_zero,
    parse_hello,
    ready_message,
)
from devices.signals import connection_changed
from devices.tokens import hash_token

from . import metrics
from .connection_limits import limits
from .health import HealthDelta, flusher
from .model_choice import shared_resolver
from .model_config import stream_feature_config
from .scoring_setup import start_for_consumer
from .stream_state import DeviceStream

log = logging.getLogger(__name__)

HELLO, AUTHENTICATING, STREAMING, CLOSED = "hello", "authenticating", "streaming", "closed"


@cache
def single_threaded_blas() -> None:
    """One BLAS thread in a process that serves streams (called once, at the first stream).

    Each stream's mel projection is a small matrix product; a multi-threaded BLAS spends more
    on waking and spinning its threads than on the product (25x slower at 36 columns on a busy
    2-core machine). Streams run in parallel across processes, not inside one product.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with librosa
        log.warning("threadpoolctl missing: set OPENBLAS_NUM_THREADS=1 for the ingest server")
        return
    threadpool_limits(limits=1, user_api="blas")


_warm: set[FeatureConfig] = set()


async def warm_up(cfg: FeatureConfig) -> None:
    """Before a process's first stream: one BLAS thread, and the feature code imported and
    its mel basis built in a thread (librosa's first import takes seconds; it must not stall
    the event loop and every other stream)."""
    if cfg not in _warm:
        single_threaded_blas()
        await asyncio.to_thread(mel_columns, np.zeros(cfg.n_fft, dtype=np.float32), cfg)
        _warm.add(cfg)


@transaction.atomic
def _start_stream(hello: Hello, channel: str) -> tuple[Device, int]:
    """Authenticate, mark the device online for this connection (one transaction).

    Returns the device and the samples of its ``stream_id`` to resume from.
    """
    device = services.authenticate(hello.token)
    device_id = device.pk
    now = timezone.now()
    resume_at = (
        device.stream_samples if hello.stream_id and hello.stream_id == device.stream_id else 0
    )
    Device.objects.filter(pk=device_id).update(
        connection_state=Device.ONLINE,
        connection=channel,
        client_name=hello.client,
        last_seen=now,
        token_last_used=now,
        stream_id=hello.stream_id or "",
        stream_samples=resume_at,
        last_error="",
    )
    if device.connection_state != Device.ONLINE:
        connection_changed(device_id, Device.ONLINE)
    return device, resume_at


def _end_stream(device_id: int, channel: str, error: str) -> None:
    ended = Device.objects.filter(pk=device_id, connection=channel).update(
        connection_state=Device.OFFLINE, connection=""
    )
    if ended:
        connection_changed(device_id, Device.OFFLINE)
    if error:
        Device.objects.filter(pk=device_id).update(last_error=error[:200])


class DeviceStreamConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.state = HELLO
        self.stream: DeviceStream | None = None
        self.device_id: int | None = None
        self.token_hash = ""
        self.resume_at = 0
        self._flushed = (0, 0, 0, 0)  # frames, samples, rejected, windows
        self.close_error = ""
        self.address = (self.scope.get("client") or ["unknown"])[0] or "unknown"
        self.counted = False
        await self.accept()
        self._hello_timer = asyncio.get_running_loop().create_task(self._hello_deadline())
        try:
            limits().opened(self.address)
            self.counted = True
        except ProtocolError as error:
            await self.fail(error)

    async def _hello_deadline(self) -> None:
        await asyncio.sleep(HELLO_TIMEOUT_S)
        if self.state == HELLO:
            await self.fail(
                ProtocolError("hello_timeout", f"no hello within {HELLO_TIMEOUT_S:g} s")
            )

    async def dispatch(self, message) -> None:
        """Audio frames skip Channels' per-message ``close_old_connections`` thread hop.

        Frames never touch the database (health is written in batches by ``live.health``,
        through ``database_sync_to_async``, which closes stale connections itself); the hop
        cost more than the frame's signal processing.
        """
        if message["type"] == "websocket.receive" and self.state == STREAMING:
            await self.websocket_receive(message)
        else:
            await super().dispatch(message)

    # ------------------------------------------------------------------ frames in

    async def receive(self, text_data=None, bytes_data=None) -> None:
        try:
            if self.state == STREAMING:
                if bytes_data is None:
                    raise ProtocolError("unexpected_text", "only binary audio frames after hello")
                limits().received(self.address, len(bytes_data))
                await self.on_windows(self.stream.feed(bytes_data))
            elif self.state == HELLO:
                if text_data is None:
                    raise ProtocolError("hello_expected", "the first frame must be a text hello")
                await self.on_hello(parse_hello(text_data))
        except ProtocolError as error:
            if self.state == STREAMING:
                metrics.FRAMES_REJECTED.labels(error.error).inc()
            await self.fail(error)
        except Exception:
            log.exception(
                "device stream %s failed", self.device_id, extra={"device_id": self.device_id}
            )
            await self.fail(ProtocolError("server_error", "internal error; reconnect later"))

    async def on_hello(self, hello: Hello) -> None:
        self.state = AUTHENTICATING
        self._hello_timer.cancel()
        limits().hello(hash_token(hello.token, settings.DEVICE_TOKEN_KEY))
        device, self.resume_at = await database_sync_to_async(_start_stream)(
            hello, self.channel_name
        )
        self.device_id = device.pk
        self.site_id = device.location.site_id
        self.token_hash = device.token_hash
        group = services.device_group(device.pk)
        # One connection per device: a newer hello replaces older streams of the same device.
        await self.channel_layer.group_send(
            group, {"type": "device.replaced", "by": self.channel_name}
        )
        await self.channel_layer.group_add(group, self.channel_name)
        resolver = shared_resolver()
        await resolver.ready()
        choice = resolver.current(self.site_id)
        cfg, stride_s = stream_feature_config(choice.path if choice else None)
        await warm_up(cfg)
        if hello.sample_rate != cfg.sample_rate:
            # The rate's resampling filter is built once per process, off the event loop (the
            # protocol's rates take milliseconds each; there are nine).
            await asyncio.to_thread(polyphase_plan, hello.sample_rate, cfg.sample_rate)
        self.stream = DeviceStream(hello, cfg, stride_s)
        self.stream.capture_zero = capture_zero(hello, self.resume_at)
        self.state = STREAMING
        metrics.STREAMS_STARTED.inc()
        flusher().add(self.channel_name, self)
        await self.send_json(
            ready_message(device.pk, device.name, hello, cfg.sample_rate, self.resume_at)
        )
        log.info(
            "device %s streaming: %s Hz %s x%d from %r",
            device.pk,
            hello.sample_rate,
            hello.encoding,
            hello.channels,
            hello.client,
            extra={"device_id": device.pk, "site_id": self.site_id},
        )

    async def on_windows(self, windows: list) -> None:
        """Hand-off point to scoring: the new ``(start_column, window)`` pairs of this stream.

        ``stream_scoring.StreamScoring`` gates, scores (in-process or through the
        ``detection-score`` worker), decides and opens/updates alerts; it never blocks here.
        """
        if not windows:
            return
        scoring = getattr(self, "scoring", None)
        if scoring is None:
            scoring = self.scoring = await start_for_consumer(self)  # False: no model
        if scoring:
            scoring.push(windows)

    async def stop_scoring(self) -> None:
        """Score what is in flight, close an open incident (its alert gets its end)."""
        scoring, self.scoring = getattr(self, "scoring", None), None
        if scoring:
            await scoring.client.close()
            await scoring.close()

    # ------------------------------------------------------------------ closing

    async def fail(self, error: ProtocolError) -> None:
        if self.state == CLOSED:
            return
        self.state = CLOSED
        self.close_error = f"{error.code} {error.error}: {error.message}"
        log.info(
            "device stream %s closed: %s",
            self.device_id,
            self.close_error,
            extra={"device_id": self.device_id, "site_id": getattr(self, "site_id", None)},
        )
        try:
            await self.send_json(error.to_message())
            await self.close(code=error.code)
        except Exception:  # the socket may already be gone
            pass

    async def disconnect(self, code) -> None:
        self._hello_timer.cancel()
        if self.counted:
            self.counted = False
            limits().closed(self.address)
        await self.stop_scoring()
        if self.device_id is None:
            return
        await self.channel_layer.group_discard(
            services.device_group(self.device_id), self.channel_name
        )
        if self.stream is not None:
            await flusher().remove(self.channel_name)
            await database_sync_to_async(_end_stream)(
                self.device_id, self.channel_name, self.close_error
            )

    # ------------------------------------------------------------------ group messages

    async def device_check(self, event) -> None:
        if self.state != STREAMING:
            return
        rows = await database_sync_to_async(services.access_rows)([self.device_id])
        await self.check_access(rows.get(self.device_id))

    async def device_replaced(self, event) -> None:
        if event.get("by") != self.channel_name and self.state == STREAMING:
            await self.fail(
                ProtocolError("replaced", "a newer connection of this device took over")
            )

    # ------------------------------------------------------------------ health (live.health)

    async def check_access(self, row) -> None:
        if self.state != STREAMING:
            return
        error = services.access_error(row, self.token_hash, timezone.now(), live=True)
        if error is not None:
            await self.fail(error)

    def health_delta(self) -> HealthDelta | None:
        if self.stream is None:
            return None
        s = self.stream.stats
        now = (s.frames, s.samples, s.frames_rejected, s.windows)
        if now == self._flushed:
            return None
        s.close_period()
        before, self._flushed = self._flushed, now
        metrics.FRAMES_ACCEPTED.inc(now[0] - before[0])
        return HealthDelta(
            device_id=self.device_id,
            frames=now[0] - before[0],
            rejected=now[2] - before[2],
            windows=now[3] - before[3],
            level_dbfs=s.level_dbfs,
            clipping=s.clipping,
            stream_samples=self.resume_at + s.samples,
            samples=now[1] - before[1],
            rate=self.stream.hello.sample_rate,
            connection=self.channel_name,
            stream_id=self.stream.hello.stream_id or "",
        )

    async def after_flush(self, delta: HealthDelta) -> None:
        if self.state == STREAMING:
            try:
                await self.send_json(ack_message(delta.stream_samples))
            except Exception:
                pass

    async def send_json(self, message: dict) -> None:
        await self.send(text_data=json.dumps(message))
