from django.apps import AppConfig


class DevicesConfig(AppConfig):
    name = "devices"

    def ready(self) -> None:
        from . import signals  # noqa: F401  (connects the device-change receivers)
