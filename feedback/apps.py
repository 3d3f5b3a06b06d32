from django.apps import AppConfig


class FeedbackConfig(AppConfig):
    """Operators' verdicts as a data set, and retraining on it (issue #24)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "feedback"
