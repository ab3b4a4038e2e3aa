"""Streaming a storage object through the service: Range, ETag/304, cache headers, limits.

Used by the resolve endpoint in proxy mode and by the local files view. Settings:
RESOLVER_PROXY_BUFFER_SIZE (chunk), RESOLVER_PROXY_TIMEOUT (seconds a response may stream),
RESOLVER_PROXY_MAX_RANGE_SIZE (bytes per response), RESOLVER_PROXY_CACHE_TIMEOUT.
"""
import hashlib
import logging
import mimetypes
import re
import time

from django.conf import settings
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.utils.http import http_date

from io_storages.client import ObjectNotFound, RangeNotSatisfiable, StorageError

logger = logging.getLogger(__name__)

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_GENERIC_TYPES = {None, "", "application/octet-stream", "binary/octet-stream"}


class StreamTimeout(Exception):
    """The response ran out of RESOLVER_PROXY_TIMEOUT: the connection is dropped so the
    client sees an incomplete transfer instead of a short body it could take as whole."""


def parse_range(header, size):
    """(start, end) inclusive for a single-range `Range` header, None to serve the whole
    object, or raise RangeNotSatisfiable. Open-ended and large ranges are bounded to
    RESOLVER_PROXY_MAX_RANGE_SIZE (a client asks for the rest in its next request)."""
    match = _RANGE.match((header or "").replace(" ", ""))
    if not match or match.groups() == ("", ""):
        return None  # absent, multi-range or malformed: RFC 9110 lets us send it all
    first, last = match.groups()
    if first == "":  # suffix range: the last N bytes
        length = int(last)
        if length == 0 or size == 0:
            raise RangeNotSatisfiable("empty suffix range")
        start, end = max(0, size - length), size - 1
    else:
        start = int(first)
        if start >= size:
            raise RangeNotSatisfiable("range starts past the end")
        end = size - 1 if last == "" else min(int(last), size - 1)
        if end < start:
            return None  # invalid range: ignore it
    return start, min(end, start + settings.RESOLVER_PROXY_MAX_RANGE_SIZE - 1)


def make_etag(info, access_token):
    """A strong ETag from the object's identity and the caller's access, so a cached copy is
    revalidated when the object changes or someone else (other rights) asks."""
    identity = info.etag or f"{info.last_modified}-{info.size}"
    digest = hashlib.sha256(f"{identity}|{info.key}|{access_token}".encode()).hexdigest()[:32]
    return f'"{digest}"'


def etag_matches(header, etag):
    if not header:
        return False
    if header.strip() == "*":
        return True
    candidates = [c.strip().removeprefix("W/") for c in header.split(",")]
    return etag in candidates


def content_type(info):
    if info.content_type not in _GENERIC_TYPES:
        return info.content_type
    return mimetypes.guess_type(info.key)[0] or "application/octet-stream"


def error_response(status, message):
    return JsonResponse({"detail": message}, status=status)


def _time_limited(stream, chunk_size, deadline):
    try:
        for chunk in stream.chunks(chunk_size):
            yield chunk
            if time.monotonic() > deadline:
                logger.info("Proxy stream of %s hit RESOLVER_PROXY_TIMEOUT", stream.info.key)
                raise StreamTimeout(stream.info.key)
    finally:
        stream.close()


def proxy_response(request, client, key, access_token):
    """The HTTP response that streams `key` from `client` to this request."""
    started = time.monotonic()
    try:
        info = client.stat(key)
    except ObjectNotFound as e:
        return error_response(404, str(e))
    except StorageError as e:
        return error_response(424, str(e))

    etag = make_etag(info, access_token)
    headers = {
        "ETag": etag,
        "Accept-Ranges": "bytes",
        "Cache-Control": f"private, max-age={settings.RESOLVER_PROXY_CACHE_TIMEOUT}, must-revalidate",
    }
    if info.last_modified:
        headers["Last-Modified"] = http_date(info.last_modified.timestamp())
    if etag_matches(request.headers.get("If-None-Match"), etag):
        return HttpResponse(status=304, headers=headers)  # the object itself is never opened

    size = info.size or 0
    try:
        byte_range = parse_range(request.headers.get("Range"), size)
    except RangeNotSatisfiable:
        return HttpResponse(status=416, headers={**headers, "Content-Range": f"bytes */{size}"})

    if byte_range:
        status, (start, end) = 206, byte_range
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        length = end - start + 1
    else:
        status, start, end, length = 200, None, None, size
    # A length is promised only for bodies the limits keep small; a bigger whole-object
    # response is sent chunked, so the time limit can never make a Content-Length false.
    if length <= settings.RESOLVER_PROXY_MAX_RANGE_SIZE:
        headers["Content-Length"] = str(length)
    headers["Content-Type"] = content_type(info)

    if request.method == "HEAD" or length == 0:
        return HttpResponse(status=status, headers=headers)
    try:
        stream = client.open(key, start, end)
    except ObjectNotFound as e:
        return error_response(404, str(e))
    except RangeNotSatisfiable:
        return HttpResponse(status=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    except StorageError as e:
        return error_response(424, str(e))
    deadline = started + settings.RESOLVER_PROXY_TIMEOUT
    body = _time_limited(stream, settings.RESOLVER_PROXY_BUFFER_SIZE, deadline)
    return StreamingHttpResponse(body, status=status, headers=headers)
