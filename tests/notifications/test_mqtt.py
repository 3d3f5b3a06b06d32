"""MQTT destinations against a real Mosquitto broker started on a free port."""

import json
import threading
import uuid

import paho.mqtt.client as mqtt
import pytest
from django.contrib.auth import get_user_model

from alerts.reviews import review_alert
from alerts.services import open_alert, update_alert
from devices.protocol import Hello
from devices.services import issue_token
from live.ingest import _end_stream, _start_stream
from notifications.models import Delivery
from tests.alerts.conftest import alert_kwargs

from .conftest import destination, free_port, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

ALERT_TOPIC = "eyescream/central-station/mic-3a/alert"
AVAILABILITY_TOPIC = "eyescream/central-station/mic-3a/availability"


class Subscriber:
    """A client like a home-automation hub: subscribes to ``topic`` and keeps what arrives."""

    def __init__(self, broker_port: int, topic: str = "eyescream/#") -> None:
        self.messages: list[mqtt.MQTTMessage] = []
        self.subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=uuid.uuid4().hex)
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = lambda _c, _u, message: self.messages.append(message)
        self.client.connect("127.0.0.1", broker_port)
        self.client.loop_start()
        assert self.subscribed.wait(10), "the subscriber could not subscribe"

    def on(self, topic: str) -> list[mqtt.MQTTMessage]:
        return [m for m in self.messages if m.topic == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def subscribers():
    made = []

    def make(port: int) -> Subscriber:
        made.append(Subscriber(port))
        return made[-1]

    yield make
    for one in made:
        one.close()


def test_a_hub_gets_alert_end_and_review_with_one_event_id_and_retained_availability(
    inline, device, mosquitto, subscribers
):
    broker = mosquitto()
    destination(device, "mqtt", url=broker.url)
    hub = subscribers(broker.port)

    alert = open_alert(**alert_kwargs(device))
    scores = dict(peak_score=0.98, mean_score=0.8, score_curve=[[2.0, 0.9]])
    update_alert(alert.pk, ended_at=alert.started_at.replace(second=9), **scores)
    operator = get_user_model().objects.create_user("olga")
    review_alert(alert.pk, operator, "1", "heard it on the platform")

    wait_for(lambda: len(hub.on(ALERT_TOPIC)) == 3)
    messages = [json.loads(m.payload) for m in hub.on(ALERT_TOPIC)]
    assert [m["type"] for m in messages] == ["alert.opened", "alert.ended", "alert.reviewed"]
    assert {m["alert"]["event_id"] for m in messages} == {f"alert-{alert.pk}"}
    assert not any(m.retain for m in hub.on(ALERT_TOPIC))
    opened, ended, reviewed = (m["alert"] for m in messages)
    assert opened["ended_at"] is None and ended["ended_at"].endswith("12:00:09+00:00")
    assert opened["peak_score"] == pytest.approx(0.97)
    assert opened["model_version"] == "abc123def456"
    assert opened["snippet_url"].startswith("https://eyescream.example/media/snippets/")
    assert reviewed["review"]["state"] == "confirmed"
    assert reviewed["review"]["user"] == "olga" and reviewed["review"]["label"] == "1"
    assert all(m["version"] == 1 for m in messages)

    # The device comes online: a hub that subscribes afterwards still learns it (retained).
    token = issue_token(device)
    hello = Hello(token=token, sample_rate=16_000, encoding="pcm16", channels=1, client="test")
    _start_stream(hello, "channel-1")
    wait_for(lambda: hub.on(AVAILABILITY_TOPIC))
    late = subscribers(broker.port)
    wait_for(lambda: late.on(AVAILABILITY_TOPIC))
    (state,) = late.on(AVAILABILITY_TOPIC)
    assert (state.payload, state.retain) == (b"online", True)

    _end_stream(device.pk, "channel-1", "")
    wait_for(lambda: [m.payload for m in hub.on(AVAILABILITY_TOPIC)] == [b"online", b"offline"])
    later = subscribers(broker.port)
    wait_for(lambda: later.on(AVAILABILITY_TOPIC))
    assert [(m.payload, m.retain) for m in later.on(AVAILABILITY_TOPIC)] == [(b"offline", True)]
    assert set(Delivery.objects.values_list("status", flat=True)) == {"delivered"}
    assert Delivery.objects.count() == 5


def test_a_login_the_broker_accepts_delivers_and_a_wrong_one_is_reported(inline, device, mosquitto):
    broker = mosquitto(users={"hub": "right-password"})
    good = destination(device, "mqtt", name="good", url=broker.url, username="hub")
    good.password = "right-password"
    good.save()
    bad = destination(device, "mqtt", name="bad", url=broker.url, username="hub", password="x")

    alert = open_alert(**alert_kwargs(device))

    assert Delivery.objects.get(destination=good).status == "delivered"
    failures = list(Delivery.objects.filter(destination=bad).order_by("attempt"))
    assert [d.status for d in failures] == ["failed", "failed", "gave_up"]
    assert all("refused" in d.error for d in failures)
    bad.refresh_from_db()
    assert "refused" in bad.last_error and bad.last_status == "gave_up"
    alert.refresh_from_db()
    assert alert.pk and alert.status == "new"  # the alert itself is as it was


def test_an_unreachable_broker_is_reported(inline, device):
    dead = destination(device, "mqtt", url=f"mqtt://127.0.0.1:{free_port()}")
    open_alert(**alert_kwargs(device))
    dead.refresh_from_db()
    assert dead.last_status == "gave_up" and "cannot reach broker" in dead.last_error
