from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"

    def ready(self) -> None:
        # Connects ``tasks.queue_follow_ups`` to ``signals.alert_stored`` (Django's place for
        # registering signal receivers; ``services`` sends the signal without knowing them).
        # ``device_broadcasts``: device changes to the dashboards.
        from . import device_broadcasts, tasks  # noqa: F401
