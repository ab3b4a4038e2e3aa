"""The one interface every storage provider implements.

Sync, export, preview and the resolve proxy are written once against `StorageClient`;
a provider's client module (``io_storages/<package>/client.py``) only maps these few
primitives onto its SDK, and its `client_for(storage)` builds a client from a storage's
fields (the registry calls it). Nothing outside a provider's client module imports that
provider's SDK.

Errors: a provider raises `StorageError` subclasses whose message is safe to show to the
user (it names the bucket/key/problem, never a credential). Anything else escaping a client
is a bug.
"""

from __future__ import annotations

import abc
import contextlib
import gzip
import uuid
import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Iterator, Optional


class StorageError(Exception):
    """A provider-side failure, with a message that is safe to return to API users."""


def unexpected_error(logger, what: str, error: BaseException) -> str:
    """Log `error` (from inside its `except` block) with its traceback under a new id, and
    return what users read instead: the kind of error and that id. The message and traceback
    may hold server paths, code and values, so they go to the server log only."""
    error_id = uuid.uuid4().hex
    logger.exception("%s failed: unexpected error (id %s)", what, error_id)
    return f"unexpected error (id {error_id}): {type(error).__name__}; the server log has the details"


class InvalidCredentials(StorageError):
    pass


class AccessDenied(StorageError):
    pass


class BucketNotFound(StorageError):
    pass


class ObjectNotFound(StorageError):
    pass


class RangeNotSatisfiable(StorageError):
    pass


@dataclass(frozen=True)
class ObjectInfo:
    """Metadata of one object, normalised across providers."""

    key: str
    size: Optional[int] = None
    last_modified: Optional[datetime] = None
    etag: Optional[str] = None
    content_type: Optional[str] = None
    #: e.g. "gzip" for objects uploaded with `Content-Encoding: gzip`; bodies stay encoded.
    content_encoding: Optional[str] = None


def unquote_etag(value: Optional[str]) -> Optional[str]:
    """An HTTP ETag without its quotes (S3 and Azure send `"abc"`), None when absent."""
    return value.strip('"') if value else None


_READ_SIZE = 1024 * 1024  # most bytes asked of a provider body per read (see ObjectStream.chunks)


@dataclass
class ObjectStream:
    """An open read of an object or of a byte range of it.

    `chunks(size)` yields the body as stored (a gzip-encoded object stays compressed: the
    proxy forwards it with its `Content-Encoding`); `decoded_body()` undoes gzip for readers
    of the content, such as task file import. `close()` releases the connection.
    `start`/`end` are the inclusive byte offsets actually returned (None for a full read) and
    `total_size` the size of the whole object, so callers can build `Content-Range` without a
    second request.
    """

    info: ObjectInfo
    body: object  # provider stream with .read(n) and .close()
    start: Optional[int] = None
    end: Optional[int] = None
    total_size: Optional[int] = None

    @property
    def content_length(self) -> Optional[int]:
        if self.start is not None and self.end is not None:
            return self.end - self.start + 1
        return self.total_size

    def chunks(self, size: int = 64 * 1024) -> Iterator[bytes]:
        """The body in pieces of at most `size` bytes.

        The provider is asked for up to `_READ_SIZE` bytes at a time and, when its body has
        `read1` (a socket stream), for what has arrived rather than a full read. A few large
        reads keep a proxied stream moving (docs/performance.md); the pieces they are cut into
        keep `size` the size of what is passed on.
        """
        read = getattr(self.body, "read1", None) or self.body.read
        read_size = max(size, _READ_SIZE)
        while True:
            data = read(read_size)
            if not data:
                return
            for offset in range(0, len(data), size):  # a read of at most `size`: data itself
                yield data[offset : offset + size]

    def read(self) -> bytes:
        return b"".join(self.chunks(_READ_SIZE))

    def decoded_body(self):
        """The body as a `.read(n)` stream of the content itself, gzip encoding undone."""
        if (self.info.content_encoding or "").strip().lower() in ("gzip", "x-gzip"):
            return _GunzippedBody(self.body, self.info.key)
        return self.body

    def close(self) -> None:
        close = getattr(self.body, "close", None)
        if close:
            close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _GunzippedBody:
    """Reads a gzip-encoded body decompressed; bad gzip data is a StorageError naming the key."""

    def __init__(self, raw, key: str):
        self._gzip = gzip.GzipFile(fileobj=raw, mode="rb")
        self._key = key

    def read(self, n: int = -1) -> bytes:
        try:
            return self._gzip.read(n)
        except (gzip.BadGzipFile, EOFError, zlib.error) as e:
            raise StorageError(
                f"'{self._key}' is stored with Content-Encoding gzip but is not valid gzip ({e})"
            ) from None


class LimitedBody:
    """A stream body that ends after `length` bytes of `raw` however much `read(n)` asks for
    (for providers that open an object at an offset and read on). `errors` is the client's
    error-translating context manager, so failures in the middle of a read are translated too."""

    def __init__(self, raw, length: int, errors=contextlib.nullcontext):
        self._raw = raw
        self._left = length
        self._errors = errors

    def read(self, n: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        n = self._left if n is None or n < 0 else min(n, self._left)
        with self._errors():
            data = self._raw.read(n)
        self._left = self._left - len(data) if data else 0  # an object that shrank ends here
        return data

    def close(self) -> None:
        self._raw.close()


class StorageClient(abc.ABC):
    """A connection to one bucket/container/path of one provider.

    Keys are full object keys (prefix included). Implementations must be safe to share
    between threads (export uses a thread pool).
    """

    def __init__(self, bucket: str):
        self.bucket = bucket

    # --- listing -----------------------------------------------------------
    @abc.abstractmethod
    def list_objects(self, prefix: str = "", recursive: bool = True) -> Iterator[ObjectInfo]:
        """Yield objects under `prefix`, page by page, in key order where the provider has one.

        With `recursive=False` only the top level below `prefix` is listed (delimiter `/`).
        "Folder" placeholder keys (ending with `/`) are never yielded.
        """

    # --- reading -----------------------------------------------------------
    @abc.abstractmethod
    def stat(self, key: str) -> ObjectInfo:
        """Metadata of one object without reading its body (raises ObjectNotFound)."""

    def open(self, key: str, start: Optional[int] = None, end: Optional[int] = None) -> ObjectStream:
        """Open `key` for streaming; `start`/`end` are inclusive offsets (end None: to the end).

        Both None reads the whole object; `end` alone reads from offset 0. Raises
        RangeNotSatisfiable for a negative `start` or an `end` before `start` (checked here,
        once for every provider: some servers would silently ignore such a range and send the
        whole object) and, from the provider, when `start` is past the end of the object.
        """
        if start is not None or end is not None:
            first = 0 if start is None else start
            if first < 0 or (end is not None and end < first):
                raise RangeNotSatisfiable(
                    f"Invalid byte range for '{key}': start={start}, end={end} "
                    "(offsets must be >= 0 and end >= start)"
                )
            start = first
        return self._open_range(key, start, end)

    @abc.abstractmethod
    def _open_range(self, key: str, start: Optional[int], end: Optional[int]) -> ObjectStream:
        """The provider's read behind `open()`, which has already validated the arguments.

        Either `start` and `end` are both None (the whole object: `ObjectStream.start`/`end`
        None), or `start` is an offset >= 0 and `end` is None (to the end of the object) or an
        offset >= `start`; both are inclusive. Only the provider knows the object's size, so it
        must raise RangeNotSatisfiable when `start` is at or past the end of the object (an
        empty object has no satisfiable range) and clamp an `end` past it to size - 1, reporting
        the offsets actually returned in the stream's `start`/`end`.
        """

    def read(self, key: str) -> bytes:
        with self.open(key) as stream:
            return stream.read()

    # --- links -------------------------------------------------------------
    @abc.abstractmethod
    def presign(self, key: str, ttl_seconds: int, content_type: Optional[str] = None) -> str:
        """A time-limited HTTP(S) URL that fetches `key` without further credentials."""

    # --- writing -----------------------------------------------------------
    @abc.abstractmethod
    def write(self, key: str, data: bytes, content_type: str = "application/json") -> None:
        """Create or replace `key` with `data`."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Delete `key`; deleting a missing key is not an error."""

    # --- validation --------------------------------------------------------
    @abc.abstractmethod
    def check(self, prefix: Optional[str] = None) -> None:
        """Raise a StorageError naming the problem unless the bucket is reachable with these
        credentials and, when `prefix` is not None, holds at least one object under it."""
