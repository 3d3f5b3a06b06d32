from django.apps import AppConfig
from django.db.models.signals import post_migrate


class RegistryConfig(AppConfig):
    name = "registry"
    verbose_name = "model registry"

    def ready(self) -> None:
        # Models are importable only once the app registry is ready (Django's convention).
        from .services import register_shipped

        def register_shipped_model(sender, using="default", **kwargs) -> None:
            register_shipped(using=using)

        post_migrate.connect(
            register_shipped_model, sender=self, dispatch_uid="registry-shipped-model", weak=False
        )
