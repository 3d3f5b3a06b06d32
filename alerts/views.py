"""Alert media (snippets and pictures) for logged-in users only: recordings of people."""

from pathlib import Path

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.views.static import serve


@login_required
def alert_media(request, folder: str, path: str):
    """Serve a file under ``MEDIA_ROOT/<folder>`` (``serve`` keeps ``path`` inside it)."""
    response = serve(request, path, document_root=Path(settings.MEDIA_ROOT) / folder)
    response["Cache-Control"] = "private, max-age=3600"
    return response
