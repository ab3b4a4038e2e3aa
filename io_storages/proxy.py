"""Streaming a storage object through the service: Range, ETag/304, cache headers, limits.

Used by the resolve endpoint in proxy mode and by the local files view. Settings:
RESOLVER_PROXY_BUFFER_SIZE (chunk), RESOLVER_PROXY_TIMEOUT (seconds a response may stream),
RESOLVER_PROXY_MAX_RANGE_SIZE (bytes per response), RESOLVER_PROXY_CACHE_TIMEOUT.

The bytes come from whoever can write to a bucket, and they are served on the service's
origin: only media types that cannot run script are shown inline (`INLINE_TYPES`); HTML, SVG,
XML and everything else is an attachment, and every response carries `Content-Security-Policy:
sandbox` and `X-Content-Type-Options: nosniff` (`SANDBOX_HEADERS`).
"""

import hashlib
import logging
import mimetypes
import re
import time
import unicodedata
from urllib.parse import quote

from django.conf import settings
from django.http import HttpResponse, StreamingHttpResponse
from django.utils.http import http_date

from core.api import error_response
from io_storages.client import ObjectNotFound, RangeNotSatisfiable, StorageError

logger = logging.getLogger(__name__)

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_GENERIC_TYPES = {None, "", "application/octet-stream", "binary/octet-stream"}

#: headers of every proxied response: a document opened from it runs no script and has no
#: origin, and the browser never second-guesses its Content-Type
SANDBOX_HEADERS = {"Content-Security-Policy": "sandbox", "X-Content-Type-Options": "nosniff"}
#: media types shown inline, besides image/*, audio/* and video/* (but SVG, and any XML image)
INLINE_TYPES = {"application/pdf", "text/plain", "application/json"}
_INLINE_FAMILIES = ("image/", "audio/", "video/")
_TOKEN = r"[A-Za-z0-9!#$%&'*+.^_`|~-]+"
_MEDIA_TYPE = re.compile(rf"^{_TOKEN}/{_TOKEN}(?:[ \t]*;[ \t]*{_TOKEN}=(?:{_TOKEN}|\"[^\"\\\x00-\x1f\x7f]*\"))*$")
_FILENAME_MAX = 150


class StreamTimeout(Exception):
    """The response ran out of RESOLVER_PROXY_TIMEOUT: the connection is dropped so the
    client sees an incomplete transfer instead of a short body it could take as whole."""


def parse_range(header):
    """The single byte range a `Range` header asks for: (start, end or None), ("suffix", n),
    or None to serve the whole object (absent, multi-range or malformed: RFC 9110 lets us)."""
    match = _RANGE.match((header or "").replace(" ", ""))
    if not match or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if first == "":
        return ("suffix", int(last))
    start, end = int(first), (int(last) if last else None)
    if end is not None and end < start:
        return None  # invalid: ignore it
    return start, end


def bounded(start, end):
    """Cut a range to RESOLVER_PROXY_MAX_RANGE_SIZE bytes (the client asks for the rest next)."""
    limit = start + settings.RESOLVER_PROXY_MAX_RANGE_SIZE - 1
    return start, limit if end is None else min(end, limit)


def make_etag(info, access_token):
    """A strong ETag from the object's identity and the caller's access, so a cached copy is
    revalidated when the object changes or someone else (other rights) asks. None when the
    provider gives no version at all (Redis): then no ETag is sent and nothing is a 304."""
    if not info.etag and not info.last_modified:
        return None
    identity = info.etag or f"{info.last_modified}-{info.size}"
    digest = hashlib.sha256(f"{identity}|{info.key}|{access_token}".encode()).hexdigest()[:32]
    return f'"{digest}"'


def etag_matches(header, etag):
    if not header or not etag:
        return False
    if header.strip() == "*":
        return True
    candidates = [c.strip().removeprefix("W/") for c in header.split(",")]
    return etag in candidates


def content_type(info):
    """The object's stored type (a well-formed one), else the type its name suggests."""
    stored = (info.content_type or "").strip()
    if stored.lower() not in _GENERIC_TYPES:
        return stored if _MEDIA_TYPE.match(stored) else "application/octet-stream"
    return mimetypes.guess_type(info.key)[0] or "application/octet-stream"


def is_inline(media_type):
    """True for the media types a browser shows without running script in them."""
    essence = media_type.split(";", 1)[0].strip().lower()
    if essence in INLINE_TYPES:
        return True
    return essence.startswith(_INLINE_FAMILIES) and "svg" not in essence and "xml" not in essence


def attachment_disposition(key):
    """`attachment` with the key's last segment as the filename: an ASCII fallback of safe
    characters and the exact name (RFC 6266/5987); no control or format characters, cut short."""
    name = key.rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] not in "CZ" or c == " ").strip() or "download"
    if len(name) > _FILENAME_MAX:  # keep the extension: it tells the user what they got
        stem, dot, ext = name.rpartition(".")
        name = (stem[: _FILENAME_MAX - len(ext) - 1] + dot + ext) if dot and len(ext) <= 16 else name[:_FILENAME_MAX]
    fallback = re.sub(r"[^A-Za-z0-9._ -]", "_", name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def _time_limited(stream, chunk_size, deadline):
    try:
        for chunk in stream.chunks(chunk_size):
            yield chunk
            if time.monotonic() > deadline:
                logger.info("Proxy stream of %s hit RESOLVER_PROXY_TIMEOUT", stream.info.key)
                raise StreamTimeout(stream.info.key)
    finally:
        stream.close()


def _not_satisfiable(client, key, headers):
    try:
        size = client.stat(key).size or 0
    except StorageError:
        size = "*"
    return HttpResponse(status=416, headers={**headers, "Content-Range": f"bytes */{size}"})


def _provider_error(e):
    return error_response(404 if isinstance(e, ObjectNotFound) else 424, str(e))


def proxy_response(request, client, key, access_token):
    """The HTTP response that streams `key` from `client` to this request, sandboxed."""
    response = _proxy_response(request, client, key, access_token)
    for name, value in SANDBOX_HEADERS.items():
        response[name] = value
    return response


def _proxy_response(request, client, key, access_token):
    """The HTTP response that streams `key` from `client` to this request.

    The common case costs one provider request (the ranged GET, whose metadata gives the
    headers). Object metadata is fetched first only when needed: for `If-None-Match` (so a
    304 never opens the object), suffix ranges (they need the size) and HEAD.
    """
    started = time.monotonic()
    headers = {
        "Accept-Ranges": "bytes",
        "Cache-Control": f"private, max-age={settings.RESOLVER_PROXY_CACHE_TIMEOUT}, must-revalidate",
    }
    requested = parse_range(request.headers.get("Range"))
    suffix = requested is not None and requested[0] == "suffix"
    info = None
    if request.headers.get("If-None-Match") or suffix or request.method == "HEAD":
        try:
            info = client.stat(key)
        except StorageError as e:
            return _provider_error(e)
        headers.update(_object_headers(info, access_token))
        if etag_matches(request.headers.get("If-None-Match"), headers.get("ETag")):
            return HttpResponse(status=304, headers=headers)
        if request.method == "HEAD":
            headers["Content-Length"] = str(info.size or 0)
            return HttpResponse(status=200, headers=headers)
    if suffix:
        size, length = info.size or 0, requested[1]
        if length == 0 or size == 0:
            return HttpResponse(status=416, headers={**headers, "Content-Range": f"bytes */{size}"})
        requested = (max(0, size - length), size - 1)

    start, end = bounded(*requested) if requested else (None, None)
    try:
        stream = client.open(key, start, end)
    except RangeNotSatisfiable:
        return _not_satisfiable(client, key, headers)
    except StorageError as e:
        return _provider_error(e)

    headers.update(_object_headers(stream.info, access_token))
    if stream.start is not None:
        status = 206
        headers["Content-Range"] = f"bytes {stream.start}-{stream.end}/{stream.total_size}"
    else:
        status = 200
    length = stream.content_length or 0
    # A length is promised only for bodies the limits keep small; a bigger whole-object
    # response is sent chunked, so the time limit can never make a Content-Length false.
    if length <= settings.RESOLVER_PROXY_MAX_RANGE_SIZE:
        headers["Content-Length"] = str(length)
    if length == 0:
        stream.close()
        return HttpResponse(status=status, headers=headers)
    deadline = started + settings.RESOLVER_PROXY_TIMEOUT
    body = _time_limited(stream, settings.RESOLVER_PROXY_BUFFER_SIZE, deadline)
    return StreamingHttpResponse(body, status=status, headers=headers)


def _object_headers(info, access_token):
    headers = {"Content-Type": content_type(info)}
    if not is_inline(headers["Content-Type"]):
        headers["Content-Disposition"] = attachment_disposition(info.key)
    if info.content_encoding:  # the bytes are sent as stored: the browser decodes them
        headers["Content-Encoding"] = info.content_encoding
    etag = make_etag(info, access_token)
    if etag:
        headers["ETag"] = etag
    if info.last_modified:
        headers["Last-Modified"] = http_date(info.last_modified.timestamp())
    return headers
