from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"

    def ready(self) -> None:
        # Connects ``tasks.queue_follow_ups`` to ``signals.alert_stored`` (Django's place for
        # registering signal receivers; ``services`` sends the signal without knowing them).
        from . import tasks  # noqa: F401
