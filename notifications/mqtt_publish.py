"""Publish to an MQTT broker with paho-mqtt: one short connection per delivery."""

from __future__ import annotations

import ssl
import threading
import uuid
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt

from .models import MQTT_SCHEMES
from .sending import DeliveryError


@dataclass(frozen=True)
class Publication:
    topic: str
    payload: str
    retain: bool = False


@dataclass(frozen=True)
class Broker:
    url: str
    username: str = ""
    password: str = ""
    ca_file: str = ""
    tls_insecure: bool = False


def publish(broker: Broker, publications: list[Publication], timeout_s: float) -> None:
    """Connect, publish each at QoS 1 and wait for the broker's acknowledgement, disconnect.

    Raises ``DeliveryError`` naming the cause: a refused or unreachable broker, a refused
    login (the broker's reason code), or no acknowledgement within ``timeout_s``.
    """
    parts = urlsplit(broker.url)
    if parts.scheme not in MQTT_SCHEMES or not parts.hostname:
        raise DeliveryError(f"not a broker URL: {broker.url!r}")
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=f"eyescream-{uuid.uuid4().hex[:12]}",
        protocol=mqtt.MQTTv311,
    )
    username = broker.username or unquote(parts.username or "")
    password = broker.password or unquote(parts.password or "")
    if username:
        client.username_pw_set(username, password or None)
    if parts.scheme == "mqtts":
        client.tls_set(ca_certs=broker.ca_file or None, cert_reqs=ssl.CERT_REQUIRED)
        client.tls_insecure_set(broker.tls_insecure)
    client.connect_timeout = timeout_s
    connected = threading.Event()
    outcome: dict = {}

    def on_connect(_client, _userdata, _flags, reason_code, _properties) -> None:
        outcome["reason"] = reason_code
        connected.set()

    def on_disconnect(_client, _userdata, _flags, reason_code, _properties) -> None:
        outcome.setdefault("reason", reason_code)
        connected.set()

    client.on_connect, client.on_disconnect = on_connect, on_disconnect
    try:
        client.connect(parts.hostname, parts.port or MQTT_SCHEMES[parts.scheme], keepalive=30)
    except (OSError, ValueError, ssl.SSLError) as error:
        raise DeliveryError(f"cannot reach broker {parts.hostname}: {error}") from None
    client.loop_start()
    try:
        if not connected.wait(timeout_s):
            raise DeliveryError(f"broker {parts.hostname} did not answer within {timeout_s:g} s")
        reason = outcome.get("reason")
        if reason is None or reason.is_failure:
            raise DeliveryError(f"broker {parts.hostname} refused the connection: {reason}")
        infos = [client.publish(p.topic, p.payload, qos=1, retain=p.retain) for p in publications]
        for publication, info in zip(publications, infos, strict=True):
            info.wait_for_publish(timeout_s)
            if not info.is_published():
                raise DeliveryError(
                    f"no acknowledgement for {publication.topic} in {timeout_s:g} s"
                )
    except (RuntimeError, ValueError) as error:  # paho: publishing on a lost connection
        raise DeliveryError(f"broker {parts.hostname}: {error}") from None
    finally:
        client.disconnect()
        client.loop_stop()
