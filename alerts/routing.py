from django.urls import path

from .consumers import DashboardConsumer

websocket_urlpatterns = [
    path("ws/alerts/", DashboardConsumer.as_asgi()),
]
