from django.urls import path

from .ingest import DeviceStreamConsumer

websocket_urlpatterns = [
    path("ws/devices/stream/", DeviceStreamConsumer.as_asgi()),
]
