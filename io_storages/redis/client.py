"""Redis behind `StorageClient`: every string key under the storage's `path` is one object.

The only module that imports redis-py. Redis keys are flat; the storage's `path` is just a key
prefix, so URIs are `redis://<key>` (the key already starts with the path) and listing is a
SCAN over `<path>*`. Every command runs inside `_errors()`, which turns redis-py exceptions
into the interface's `StorageError` subclasses naming host, port and db, never the password.

Redis keeps no modification time and no version of a value, so `last_modified` and `etag` are
always None: a marker built from the size alone would let caches serve a changed value of the
same length, and a content hash would cost Redis a full read of the value on every stat.

`address` (see `resolve_checked`) lets the caller pin the IP the client connects to, so the
SSRF check and the connection see the same address (no second DNS answer in between).
"""

from __future__ import annotations

import re
import socket
from contextlib import contextmanager
from typing import Callable, Iterator, Optional

import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.exceptions import (
    AuthenticationError,
    ConnectionError,
    NoPermissionError,
    RedisError,
    ResponseError,
    TimeoutError,
)
from redis.retry import Retry

from io_storages import ssrf
from io_storages.client import (
    AccessDenied,
    BucketNotFound,
    InvalidCredentials,
    ObjectInfo,
    ObjectNotFound,
    ObjectStream,
    RangeNotSatisfiable,
    StorageClient,
    StorageError,
)

SCAN_COUNT = 1000  # keys Redis looks at per SCAN call: one page of the listing
_GLOB_SPECIAL = re.compile(r"([\\*?\[\]])")  # what MATCH would take as a pattern


def resolve_checked(host: str, port: int, check: Callable[[str, int], None]) -> str:
    """Resolve `host` once, let `check(address, port)` refuse any of its addresses (by
    raising), and return the first one: the client then connects to exactly that address."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as e:
        raise StorageError(f"Cannot resolve Redis host '{host}' ({type(e).__name__})") from None
    addresses = [info[4][0] for info in infos]
    if not addresses:
        raise StorageError(f"Cannot resolve Redis host '{host}' (no addresses)")
    for address in addresses:
        check(address, port)
    return addresses[0]


_PIECE = 1024 * 1024  # bytes per GETRANGE: what one open stream holds at most
_MAX_OFFSET = 2**62  # far past Redis' 512 MB values, within GETRANGE's signed 64-bit offsets


class _Pieces:
    """The body of an open value, fetched `_PIECE` bytes at a time with GETRANGE, so a large
    value is never held whole. Redis keeps no version of a value: a length that changes
    between pieces fails the read (a same-length rewrite cannot be detected)."""

    def __init__(self, client: "RedisClient", key: str, size: int, first: bytes, offset: int, last: int):
        self._client, self._key, self._size = client, key, size
        self._buffer, self._position = first, 0  # the current piece and how far it was read
        self._offset, self._last = offset, last  # the next piece starts at _offset

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            return b"".join(iter(lambda: self.read(_PIECE), b""))
        if self._position >= len(self._buffer) and self._offset <= self._last:
            self._buffer, self._position = self._fetch(), 0
        data = self._buffer[self._position : self._position + n]
        self._position += len(data)
        return data

    def _fetch(self) -> bytes:
        piece_end = min(self._offset + _PIECE - 1, self._last)
        pipe = self._client._redis.pipeline(transaction=True)
        pipe.strlen(self._key).getrange(self._key, self._offset, piece_end)
        with self._client._errors(self._key):
            size, data = self._client._execute(pipe)
        if size != self._size or not data:
            raise StorageError(f"Redis key '{self._key}' changed while it was being read")
        self._offset += len(data)
        return data

    def close(self) -> None:
        self._buffer, self._position, self._offset = b"", 0, self._last + 1


class RedisClient(StorageClient):

    def __init__(
        self,
        path: str,
        *,
        host: str = "127.0.0.1",
        port: int = 6379,
        password: Optional[str] = None,
        db: int = 0,
        address: Optional[str] = None,
    ):
        super().__init__(path)
        self.host, self.port, self.db = host, int(port), int(db)
        self._password = password or None  # kept only to scrub it from error messages
        # One pool per client; redis.Redis is thread-safe (each command borrows a connection).
        # A short connect timeout: an address that never answers fails validation in seconds.
        # One immediate retry covers a pooled connection the server closed; redis-py's default
        # (3 retries with backoff) makes a refused port take ~4 s to report.
        self._redis = redis.Redis(
            host=address or host,
            port=self.port,
            password=self._password,
            db=self.db,
            socket_connect_timeout=3,
            socket_timeout=30,
            retry=Retry(NoBackoff(), 1),
        )

    # --- error mapping -------------------------------------------------------
    def _safe(self, text: str) -> str:
        return text.replace(self._password, "***") if self._password else text

    @contextmanager
    def _errors(self, key: Optional[str] = None, checking: bool = False):
        """Translate redis-py errors. `checking`: the connection check, whose messages start
        with Label Studio's (for any failure) "Can't connect to Redis server." (UIs and scripts
        match on it), what went wrong after it."""
        server = f"{self.host}:{self.port}"
        where = f"key '{key}' in Redis db {self.db}" if key is not None else f"Redis db {self.db} at {server}"
        lead = "Can't connect to Redis server. " if checking else ""
        try:
            yield
        except AuthenticationError:  # a ConnectionError subclass: must come first
            raise InvalidCredentials(f"{lead}Redis at {server} refused the login: check password") from None
        except (ConnectionError, TimeoutError) as e:
            if checking:
                raise StorageError(f"{lead}Nothing answered at {server} ({type(e).__name__})") from None
            raise StorageError(f"Cannot connect to Redis at {server} ({type(e).__name__})") from None
        except NoPermissionError:
            raise AccessDenied(f"{lead}Access denied to {where}: check the Redis user's ACL") from None
        except ResponseError as e:
            if "DB index is out of range" in str(e):  # SELECT on connect
                raise BucketNotFound(f"{lead}Redis at {server} has no database {self.db}") from None
            raise StorageError(f"{lead}Redis error on {where}: {self._safe(str(e))}") from None
        except RedisError as e:
            raise StorageError(f"{lead}Redis client error on {where}: {self._safe(str(e))}") from None

    @staticmethod
    def _execute(pipe) -> list:
        """Run a pipeline; WRONGTYPE replies stay in the list (the TYPE reply next to them says
        what the key is), any other error is raised for `_errors()` to translate."""
        replies = pipe.execute(raise_on_error=False)
        for reply in replies:
            if isinstance(reply, ResponseError) and not str(reply).startswith("WRONGTYPE"):
                raise reply
        return replies

    @staticmethod
    def _require_string(key: str, kind: bytes) -> None:
        if kind == b"none":
            raise ObjectNotFound(f"Redis key '{key}' does not exist")
        if kind != b"string":
            raise StorageError(f"Redis key '{key}' holds a {kind.decode()}, not a string value")

    # --- StorageClient ---------------------------------------------------------
    def list_objects(self, prefix: str = "", recursive: bool = True) -> Iterator[ObjectInfo]:
        prefix = prefix or ""
        match = _GLOB_SPECIAL.sub(r"\\\1", prefix) + "*"
        # SCAN may return a key twice when the keyspace is resized during the scan; a sync
        # must not import it twice. Costs memory per listed key, like the listing itself would.
        seen = set()
        cursor = 0
        with self._errors():
            while True:
                cursor, raw_keys = self._redis.scan(cursor, match=match, count=SCAN_COUNT)
                keys = []
                for raw in raw_keys:
                    try:
                        key = raw.decode()
                    except UnicodeDecodeError:
                        continue  # cannot be named in a URI or a task link
                    rest = key[len(prefix) :]
                    if key in seen or key.endswith("/") or (not recursive and "/" in rest):
                        continue
                    seen.add(key)
                    keys.append(key)
                if keys:
                    # TYPE and STRLEN of the whole page in one round trip.
                    pipe = self._redis.pipeline(transaction=False)
                    for key in keys:
                        pipe.type(key)
                        pipe.strlen(key)
                    replies = self._execute(pipe)
                    for key, kind, size in zip(keys, replies[::2], replies[1::2]):
                        if kind == b"string":  # hashes, lists...: not objects; b"none": deleted
                            yield ObjectInfo(key=key, size=size)
                if cursor == 0:
                    return

    def stat(self, key: str) -> ObjectInfo:
        with self._errors(key):
            kind, size = self._execute(self._redis.pipeline(transaction=False).type(key).strlen(key))
        self._require_string(key, kind)
        return ObjectInfo(key=key, size=size)

    def _open_range(self, key: str, start: Optional[int], end: Optional[int]) -> ObjectStream:
        begin = start or 0
        # MULTI/EXEC: type, size and the first piece come from the same version of the value.
        first_end = begin + _PIECE - 1 if end is None else min(end, begin + _PIECE - 1)
        pipe = self._redis.pipeline(transaction=True)
        # GETRANGE takes signed 64-bit offsets (beyond them, an error: a 424). No value is that
        # long, so a larger offset means the same: past the end.
        pipe.type(key).strlen(key).getrange(key, min(begin, _MAX_OFFSET), min(first_end, _MAX_OFFSET))
        with self._errors(key):
            kind, size, first = self._execute(pipe)
        self._require_string(key, kind)
        ranged = start is not None
        if ranged and begin >= size:
            raise RangeNotSatisfiable(f"Requested range is past the end of Redis key '{key}'")
        last = size - 1 if end is None else min(end, size - 1)
        return ObjectStream(
            info=ObjectInfo(key=key, size=size),
            body=_Pieces(self, key, size, first, begin + len(first), last),
            start=begin if ranged else None,
            end=last if ranged else None,
            total_size=size,
        )

    def presign(self, key: str, ttl_seconds: int, content_type: Optional[str] = None) -> str:
        raise StorageError("Redis storages cannot presign URLs; files are served through the proxy")

    def write(self, key: str, data: bytes, content_type: str = "application/json") -> None:
        # Redis values carry no metadata: content_type is dropped (the proxy guesses it from the key).
        with self._errors(key):
            self._redis.set(key, data)

    def delete(self, key: str) -> None:
        with self._errors(key):
            self._redis.delete(key)  # DEL of a missing key answers 0, not an error

    def check(self, prefix: Optional[str] = None) -> None:
        with self._errors(checking=True):
            self._redis.ping()  # connection, password and db (SELECT runs on connect)
        if prefix is not None:
            listing = self.list_objects(prefix)
            try:
                found = next(listing, None)
            finally:
                listing.close()
            if found is None:
                raise StorageError(f"No objects found in Redis db {self.db} under path '{prefix}'")


def client_for(storage) -> RedisClient:
    """The client of a Redis storage. `host` is user-typed: parsed strictly (a host name or
    address only: no URL, user-info, port, whitespace or control characters) and checked
    against SSRF; operators may allow a private Redis by listing it in
    SSRF_TRUSTED_ENDPOINTS as redis://host:port. Either way the client connects to an address
    that was looked up and checked here, never to what a later lookup answers."""
    host = ssrf.parse_host(storage.host or "127.0.0.1", what="Redis host")
    port = storage.port or 6379
    if not 1 <= port <= 65535:
        raise StorageError("Redis port must be a number from 1 to 65535")
    address = None
    if settings.SSRF_PROTECTION_ENABLED:
        if ssrf.is_trusted(ssrf.Endpoint("redis", host, port)):
            # Trust covers that host: connect to one of its addresses, looked up now.
            address = resolve_checked(host, port, lambda address, port: None)
        else:
            ssrf.check_host(host, port)  # local names are refused before any lookup, with the reason
            # Connect-time check: resolve once more, check what we got and connect to exactly
            # that address, so DNS cannot answer differently when redis-py connects (rebinding).
            address = resolve_checked(host, port, ssrf.check_host)
    return RedisClient(
        storage.path or "", host=host, port=port, password=storage.password, db=storage.db, address=address
    )
