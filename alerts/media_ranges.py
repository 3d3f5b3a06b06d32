"""A file of ``MEDIA_ROOT`` answered whole (200) or in part (206) for an HTTP ``Range``.

Browsers fetch audio in ranges and can only seek (scrub) in a file whose server answers them:
``bytes=a-b``, ``bytes=a-`` and ``bytes=-n`` (one range; several ranges get the whole file), 416
for a range past the end. ``If-Modified-Since`` gets 304 as with ``django.views.static.serve``.
"""

from __future__ import annotations

import mimetypes
import re
from pathlib import Path

from django.http import FileResponse, Http404, HttpResponse, HttpResponseNotModified
from django.utils._os import safe_join
from django.utils.http import http_date
from django.views.static import was_modified_since

RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def byte_range(header: str, size: int) -> tuple[int, int] | None | bool:
    """``(first, last)`` (inclusive) of one satisfiable range; None for no usable range (serve
    the whole file); False for a range that lies past the end (416)."""
    match = RANGE.match(header.strip())
    if match is None:
        return None
    start, end = match.groups()
    if not start and not end:
        return None
    if not start:  # the last n bytes
        length = int(end)
        if length == 0:
            return False
        return max(0, size - length), size - 1
    first = int(start)
    last = min(int(end), size - 1) if end else size - 1
    if first >= size or (end and int(end) < first):
        return False
    return first, last


def serve_ranged(request, path: str, document_root: Path):
    try:
        full = Path(safe_join(document_root, path))
    except Exception:  # outside the root (SuspiciousFileOperation)
        raise Http404("no such file") from None
    if not full.is_file():
        raise Http404("no such file")
    stat = full.stat()
    if not was_modified_since(request.META.get("HTTP_IF_MODIFIED_SINCE"), stat.st_mtime):
        return HttpResponseNotModified()
    content_type = mimetypes.guess_type(str(full))[0] or "application/octet-stream"
    wanted = byte_range(request.META.get("HTTP_RANGE", ""), stat.st_size)
    if wanted is False:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{stat.st_size}"
    elif wanted is None:
        response = FileResponse(full.open("rb"), content_type=content_type)
    else:
        first, last = wanted
        with full.open("rb") as handle:
            handle.seek(first)
            data = handle.read(last - first + 1)
        response = HttpResponse(data, status=206, content_type=content_type)
        response["Content-Range"] = f"bytes {first}-{last}/{stat.st_size}"
    response["Accept-Ranges"] = "bytes"
    response["Last-Modified"] = http_date(stat.st_mtime)
    return response
