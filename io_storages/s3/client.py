"""Amazon S3 (and S3-compatible servers: MinIO, SeaweedFS, moto...) behind `StorageClient`.

The only module that imports boto3/botocore. Every SDK call runs inside `_errors()`, which
turns botocore exceptions into the interface's `StorageError` subclasses with messages that
name the bucket/key/endpoint but never a credential.

`before_connect(url)` is called before every HTTP request this client sends (retries and
region redirects included), and `check_peer(address, host)` with the address each new
connection reached, before anything is sent on it, so an SSRF guard can refuse an address
at connect time. Whatever they raise propagates unchanged (only botocore exceptions are
translated), so the guard should raise a `StorageError` subclass to give the user a safe
message.
"""

from __future__ import annotations

import re
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Callable, Iterator, Optional
from urllib.parse import unquote

import boto3
import botocore.session
import urllib3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.utils import parse_timestamp as botocore_parse_timestamp

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
    unquote_etag,
)

# s3v4: with a custom endpoint boto3 would otherwise presign with SigV2, which real
# S3-compatible servers refuse. One pool big enough for the export thread pool.
_CONFIG = Config(
    signature_version="s3v4",
    retries={"max_attempts": 3, "mode": "standard"},
    max_pool_connections=32,
    connect_timeout=10,  # an address that never answers fails in seconds, not minutes
    read_timeout=60,
    # botocore >= 1.36 CRC-checks every whole-object GET, which only fails after the last byte
    # was already streamed to the browser and costs the proxy ~20% throughput; TLS and S3's
    # own checks protect transfers, so validate only where the API requires it.
    response_checksum_validation="when_required",
    request_checksum_calculation="when_required",
)


def _parse_timestamp(value):
    """S3 dates: ISO 8601 in XML bodies (LastModified of every listed key), RFC 7231 in headers.

    botocore's default parser goes through dateutil at ~125 us per value: 1.2 s of CPU per
    10,000 listed keys and about 0.1 ms on every GET. The standard library parses both
    forms in under 5 us; anything else still goes to botocore's parser.
    """
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            try:
                parsed = parsedate_to_datetime(value)
            except (TypeError, ValueError):
                return botocore_parse_timestamp(value)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    return botocore_parse_timestamp(value)


# Creating a boto3 Session loads the endpoint/model data (~90 ms); a client from an existing
# session takes ~5 ms. So all S3Clients share one session and pass their own credentials to
# `client()`. Sessions are not thread-safe, hence the lock; the clients they make are.
_BOTOCORE_SESSION = botocore.session.get_session()
_BOTOCORE_SESSION.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=_parse_timestamp)
_SESSION = boto3.session.Session(botocore_session=_BOTOCORE_SESSION)
_SESSION_LOCK = threading.Lock()

_CREDENTIAL_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"}
_DENIED_CODES = {"AccessDenied", "AllAccessDisabled", "403"}
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class _Body:
    """The body of a GET, read from botocore's underlying urllib3 response.

    `read1(n)` gives the bytes that have arrived (one socket read, at most n) instead of
    waiting for n of them, so the proxy forwards data while the rest is on its way
    (docs/performance.md: about +0.1 of direct throughput at 64 KB chunks). botocore's
    StreamingBody has no read1 and counts only its own reads, so its check is done here: a
    body that ends before its Content-Length raises instead of passing for the whole object.
    """

    def __init__(self, streaming_body, length: Optional[int], where: str):
        self._raw = streaming_body._raw_stream  # no public accessor; stable since botocore 1.0
        self._left = length
        self._where = where

    def read(self, n: int = -1) -> bytes:
        return self._take(self._raw.read, n)

    def read1(self, n: int = -1) -> bytes:
        return self._take(self._raw.read1, n)

    def _take(self, read, n: Optional[int]) -> bytes:
        try:
            data = read(None if n is None or n < 0 else n)
        except urllib3.exceptions.HTTPError as e:  # connection reset, read timeout...
            raise StorageError(f"Reading {self._where} from S3 failed: {type(e).__name__}") from None
        if data:
            if self._left is not None:
                self._left -= len(data)
        elif n != 0 and self._left:
            raise StorageError(f"S3 closed the connection with {self._left} bytes of {self._where} unread")
        return data

    def close(self) -> None:
        self._raw.close()


def _check_connected_peers(client, check_peer: Callable[[str, str], None]) -> None:
    """Make every connection a boto3 client (S3, SQS) opens pass `check_peer` before sending
    anything (`ssrf.peer_checked_pools`)."""
    session = client._endpoint.http_session
    classes = ssrf.peer_checked_pools(session._pool_classes_by_scheme, check_peer)
    session._pool_classes_by_scheme = classes  # used for proxy managers created later
    session._manager.pool_classes_by_scheme = classes


def _blank_to_none(value: Optional[str]) -> Optional[str]:
    # Form fields arrive as "" when left empty; boto3 would take "" as a real value.
    return value or None


def _userinfo(url: Optional[str]) -> list:
    """The user-info of `url` ("user:password" before an "@" in the authority) and its parts,
    as typed and percent-decoded: what error messages must never contain."""
    authority = re.split(r"[/?#]", (url or "").partition("://")[2], maxsplit=1)[0]
    userinfo = authority.rpartition("@")[0]
    if not userinfo:
        return []
    parts = {userinfo, userinfo.partition(":")[2]}  # all of it, and the password
    # Longest first; pieces too short to scrub without mangling the message are left out.
    return sorted({p for part in parts for p in (part, unquote(part)) if len(p) >= 4}, key=len, reverse=True)


def _without_userinfo(url: Optional[str]) -> str:
    scheme, sep, rest = (url or "").partition("://")
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    if "@" in authority:  # scheme://user:password@host/... -> scheme://host/...
        rest = rest[authority.rindex("@") + 1 :]
    return f"{scheme}{sep}{rest}"


class S3Client(StorageClient):
    def __init__(
        self,
        bucket: str,
        *,
        aws_access_key_id: Optional[str] = None,
        aws_secret_access_key: Optional[str] = None,
        aws_session_token: Optional[str] = None,
        region_name: Optional[str] = None,
        endpoint_url: Optional[str] = None,
        sse_kms_key_id: Optional[str] = None,
        before_connect: Optional[Callable[[str], None]] = None,
        check_peer: Optional[Callable[[str, str], None]] = None,
    ):
        super().__init__(bucket)
        self.sse_kms_key_id = _blank_to_none(sse_kms_key_id)
        # Kept only to scrub them from error messages, never shown. A user-info part of the
        # endpoint ("user:password@", which client_for refuses) counts as a secret too.
        self._secrets = [s for s in (aws_secret_access_key, aws_session_token, *_userinfo(endpoint_url)) if s]
        # With endpoint_url None boto3 reads AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL itself; with
        # no keys it falls back to its default chain (env, profile, instance role).
        invalid_endpoint = False
        with _SESSION_LOCK, self._errors():  # e.g. a key id without its secret
            try:
                self._s3 = _SESSION.client(
                    "s3",
                    aws_access_key_id=_blank_to_none(aws_access_key_id),
                    aws_secret_access_key=_blank_to_none(aws_secret_access_key),
                    aws_session_token=_blank_to_none(aws_session_token),
                    region_name=_blank_to_none(region_name),
                    endpoint_url=_blank_to_none(endpoint_url),
                    config=_CONFIG,
                )
            except ValueError:  # "Invalid endpoint: <the URL>": never quoted, never chained
                invalid_endpoint = True
        if invalid_endpoint:
            raise StorageError(f"The S3 endpoint URL of bucket '{bucket}' is not a valid URL")
        if before_connect is not None:

            def hook(request, **kwargs):
                before_connect(request.url)
                # Returning None lets botocore send the request itself.

            self._s3.meta.events.register("before-send.s3.*", hook)
        if check_peer is not None:
            _check_connected_peers(self._s3, check_peer)

    # --- error mapping -------------------------------------------------------
    def _safe(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    @property
    def endpoint_shown(self) -> str:
        """The endpoint as error messages name it: without any user-info part."""
        return _without_userinfo(self._s3.meta.endpoint_url)

    def _where(self, key: Optional[str]) -> str:
        return f"'{key}' in bucket '{self.bucket}'" if key is not None else f"bucket '{self.bucket}'"

    @contextmanager
    def _errors(self, key: Optional[str] = None, checking: bool = False):
        """Translate botocore errors; `key` says whether a bare 404 means key or bucket
        (HEAD responses carry no error code, only the status). `checking`: the connection
        check, whose messages start with Label Studio's wording for the same condition (UIs
        and scripts match on it), ours after it."""
        where = self._where(key)
        try:
            yield
        except ClientError as e:
            error = e.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            keys = "check aws_access_key_id / aws_secret_access_key"
            # Label Studio's check says "Cannot connect to S3 <bucket> with specified AWS
            # credentials" for a 403 or SignatureDoesNotMatch, "Cannot find bucket <bucket> in S3"
            # for a 404 or NoSuchBucket.
            refused = f"Cannot connect to S3 {self.bucket} with specified AWS credentials: " if checking else ""
            if code in _CREDENTIAL_CODES:
                raise InvalidCredentials(
                    f"{refused}{keys}" if checking else f"Cannot access bucket '{self.bucket}': {keys}"
                ) from None
            if code in _DENIED_CODES or status == 403:
                raise AccessDenied(
                    f"{refused}access denied to {where}: {keys} and the bucket policy"
                    if checking
                    else f"Access denied to {where}: {keys} and the bucket policy"
                ) from None
            if code == "NoSuchBucket" or (status == 404 and key is None):
                raise BucketNotFound(
                    f"Cannot find bucket {self.bucket} in S3" if checking else f"Bucket '{self.bucket}' does not exist"
                ) from None
            if code == "NoSuchKey" or status == 404:
                raise ObjectNotFound(f"Object {where} does not exist") from None
            if code == "InvalidRange" or status == 416:
                raise RangeNotSatisfiable(f"Requested range is past the end of {where}") from None
            message = self._safe(str(error.get("Message", "")))
            raise StorageError(f"S3 error on {where}: {code or status} {message}".rstrip()) from None
        except (NoCredentialsError, PartialCredentialsError):
            raise InvalidCredentials(
                f"No usable AWS credentials for bucket '{self.bucket}': "
                "set aws_access_key_id / aws_secret_access_key"
            ) from None
        except (BotoConnectionError, HTTPClientError) as e:
            if isinstance(e.kwargs.get("error"), StorageError):  # raised by check_peer
                raise e.kwargs["error"] from None
            raise StorageError(
                f"Cannot reach S3 endpoint '{self.endpoint_shown}' for bucket '{self.bucket}' ({type(e).__name__})"
            ) from None
        except BotoCoreError as e:
            raise StorageError(f"S3 client error on {where}: {self._safe(str(e))}") from None

    # --- StorageClient ---------------------------------------------------------
    def list_objects(self, prefix: str = "", recursive: bool = True) -> Iterator[ObjectInfo]:
        params = {"Bucket": self.bucket, "Prefix": prefix or ""}
        if not recursive:
            params["Delimiter"] = "/"  # sub-"folders" go to CommonPrefixes, which we ignore
        pages = self._s3.get_paginator("list_objects_v2").paginate(**params, PaginationConfig={"PageSize": 1000})
        with self._errors():
            for page in pages:
                for obj in page.get("Contents", []):
                    if obj["Key"].endswith("/"):  # folder placeholder made by consoles
                        continue
                    yield ObjectInfo(
                        key=obj["Key"],
                        size=obj.get("Size"),
                        last_modified=obj.get("LastModified"),
                        etag=unquote_etag(obj.get("ETag")),
                    )

    def stat(self, key: str) -> ObjectInfo:
        with self._errors(key):
            r = self._s3.head_object(Bucket=self.bucket, Key=key)
        return self._info(key, r, r.get("ContentLength"))

    def _open_range(self, key: str, start: Optional[int], end: Optional[int]) -> ObjectStream:
        params = {"Bucket": self.bucket, "Key": key}
        if start is not None:
            # A negative start or an end before start never gets here: StorageClient.open()
            # refuses it, as S3 would silently ignore such a header and send the whole object.
            # "bytes=a-" is open-ended; an end past the object is clamped by the server, and a
            # start past it is a 416 InvalidRange (RangeNotSatisfiable, in _errors).
            params["Range"] = f"bytes={start}-{'' if end is None else end}"
        with self._errors(key):
            r = self._s3.get_object(**params)
        first = last = None
        total = r.get("ContentLength")
        match = _CONTENT_RANGE.match(r.get("ContentRange") or "")
        if match:  # a 206: report what was actually sent and the size of the whole object
            first, last = int(match[1]), int(match[2])
            total = None if match[3] == "*" else int(match[3])
        body = _Body(r["Body"], r.get("ContentLength"), self._where(key))
        return ObjectStream(info=self._info(key, r, size=total), body=body, start=first, end=last, total_size=total)

    def presign(self, key: str, ttl_seconds: int, content_type: Optional[str] = None) -> str:
        params = {"Bucket": self.bucket, "Key": key}
        if content_type:
            params["ResponseContentType"] = content_type
        with self._errors(key):
            return self._s3.generate_presigned_url("get_object", Params=params, ExpiresIn=int(ttl_seconds))

    def write(self, key: str, data: bytes, content_type: str = "application/json") -> None:
        if self.sse_kms_key_id:
            sse = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.sse_kms_key_id}
        else:
            sse = {"ServerSideEncryption": "AES256"}
        with self._errors(key):
            self._s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type, **sse)

    def delete(self, key: str) -> None:
        with self._errors(key):
            self._s3.delete_object(Bucket=self.bucket, Key=key)  # S3 answers 204 for a missing key

    def check(self, prefix: Optional[str] = None) -> None:
        # One ListObjectsV2 covers both checks: it needs the same s3:ListBucket permission as
        # HeadBucket, and unlike a HEAD its error body says *why* (InvalidAccessKeyId,
        # NoSuchBucket...) instead of a bare 403/404.
        with self._errors(checking=True):
            r = self._s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix or "", MaxKeys=1)
        if prefix is not None and not r.get("KeyCount"):
            # Label Studio's wording first: "s3://<bucket>/<prefix> not found."
            raise StorageError(
                f"s3://{self.bucket}/{prefix} not found. No objects found in bucket '{self.bucket}' "
                f"under prefix '{prefix}'"
            )

    @staticmethod
    def _info(key: str, r: dict, size: Optional[int]) -> ObjectInfo:
        # `size` is the whole object's: for a ranged GET, ContentLength is only the range's.
        return ObjectInfo(
            key=key,
            size=size,
            last_modified=r.get("LastModified"),
            etag=unquote_etag(r.get("ETag")),
            content_type=r.get("ContentType"),
            content_encoding=r.get("ContentEncoding"),
        )


def client_for(storage) -> S3Client:
    """The client of an S3 storage. A user-given endpoint is parsed once, strictly, and the
    client gets the URL rebuilt from it (the host checked is the host connected to); it is
    checked against SSRF now, before every request and on every connected socket (DNS may
    answer differently each time), trusted or not. Empty keys would be the server's own
    identity (boto3's default chain): refused unless the operator allows it, and then only
    for the operator's endpoints (boto3's default or a trusted one), which the keys of the
    default chain are meant for."""
    endpoint = ssrf.check_url(storage.s3_endpoint, what="s3_endpoint") if storage.s3_endpoint else None
    if not storage.aws_access_key_id and not storage.aws_secret_access_key:
        ssrf.require_credentials("aws_access_key_id and aws_secret_access_key are")
        if endpoint is not None and not ssrf.is_trusted(endpoint):
            raise InvalidCredentials(
                "aws_access_key_id and aws_secret_access_key are required with this s3_endpoint: "
                "the server's own credentials are only used with the endpoints the operator configured"
            )
    return S3Client(
        storage.bucket,
        aws_access_key_id=storage.aws_access_key_id,
        aws_secret_access_key=storage.aws_secret_access_key,
        aws_session_token=storage.aws_session_token,
        region_name=storage.region_name,
        endpoint_url=endpoint.url if endpoint else None,
        sse_kms_key_id=storage.aws_sse_kms_key_id,
        **(ssrf.EndpointGuard(endpoint).hooks() if endpoint else {}),
    )
