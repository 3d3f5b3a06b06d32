"""Alert media (snippets and pictures) for operators only: they are recordings of people."""

from pathlib import Path

from django.conf import settings
from django.views.static import serve

from accounts.permissions import operator_required


@operator_required
def alert_media(request, folder: str, path: str):
    """Serve a file under ``MEDIA_ROOT/<folder>`` (``serve`` keeps ``path`` inside it)."""
    response = serve(request, path, document_root=Path(settings.MEDIA_ROOT) / folder)
    response["Cache-Control"] = "private, max-age=3600"
    return response
