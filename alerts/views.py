"""Alert media (snippets and pictures) for operators only: they are recordings of people."""

from pathlib import Path

from django.conf import settings

from accounts.permissions import operator_required

from .media_ranges import serve_ranged


@operator_required
def alert_media(request, folder: str, path: str):
    """Serve a file under ``MEDIA_ROOT/<folder>`` (kept inside it), in byte ranges on request
    (the snippet player seeks with them)."""
    response = serve_ranged(request, path, document_root=Path(settings.MEDIA_ROOT) / folder)
    response["Cache-Control"] = "private, max-age=3600"
    return response
