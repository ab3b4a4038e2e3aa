"""Google Cloud Storage behind `StorageClient`.

The only module that imports google-cloud-storage / google-auth. Every SDK call runs inside
`_errors()`, which turns Google exceptions into the interface's `StorageError` subclasses
with messages that name the bucket/key/endpoint but never a credential.

Credentials, in order: the service-account key given as JSON text (the
`google_application_credentials` field); else, when `STORAGE_EMULATOR_HOST` is set (an
emulator), anonymous access; else the environment's default credentials (google.auth.default:
GOOGLE_APPLICATION_CREDENTIALS, gcloud, the metadata server). Under an emulator the API
client stays anonymous even with a key: the key is then only used to sign URLs, because it
could not fetch an access token offline and emulators check neither tokens nor signatures.
So does the server's own key (GOOGLE_APPLICATION_CREDENTIALS) for storages without one: it
signs their URLs under an emulator as it does against Google.
`client_for` refuses empty credentials (the server's own identity) unless the operator
allows them (STORAGE_SERVER_CREDENTIALS_ENABLED).

A key names the URL its access tokens are fetched from (`token_uri`): the service would POST a
signed request there. `client_for` accepts only Google's token endpoints and those the
operator lists in GCS_TRUSTED_TOKEN_URIS, and token requests never follow redirects. A key is
checked field by field before the SDK sees it, so an odd one is an `InvalidCredentials`
naming the problem, not an SDK exception.
"""

from __future__ import annotations

import functools
import json
import os
import re
from contextlib import contextmanager
from datetime import timedelta
from typing import Iterator, Optional, Tuple

import google.auth
import google.auth.credentials
import requests
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from google.api_core import exceptions as api_exceptions
from google.auth import exceptions as auth_exceptions
from google.auth.credentials import AnonymousCredentials, Credentials, Signing
from google.auth.transport.requests import AuthorizedSession, Request
from google.cloud import storage
from google.cloud.storage.exceptions import DataCorruption, InvalidResponse
from google.cloud.storage.fileio import BlobReader
from google.cloud.storage.retry import DEFAULT_RETRY
from google.oauth2 import service_account

from io_storages import ssrf
from io_storages.client import (
    AccessDenied,
    BucketNotFound,
    InvalidCredentials,
    LimitedBody,
    ObjectInfo,
    ObjectNotFound,
    ObjectStream,
    RangeNotSatisfiable,
    StorageClient,
    StorageError,
)

FIELD = "google_application_credentials"  # named in messages so users know what to fix
_SA_FIELDS = ("client_email", "private_key", "token_uri")
# Fields of a key that google-auth reads: each must be a string when present.
_STRING_FIELDS = ("type", "client_email", "private_key", "token_uri", "private_key_id", "project_id", "universe_domain")
_UNIVERSE = "googleapis.com"  # the only universe storage.Client talks to
# Where Google issues service-account access tokens (keys from the console name the first).
GOOGLE_TOKEN_URIS = (
    "https://oauth2.googleapis.com/token",
    "https://accounts.google.com/o/oauth2/token",
    "https://www.googleapis.com/oauth2/v4/token",
)
# Bytes fetched per ranged request while streaming: big enough that a 7 MB proxy range takes
# a few requests, small enough that many concurrent streams stay cheap in memory.
_READ_CHUNK = 2 * 1024 * 1024
_MAX_SIGNED_URL_TTL = 7 * 24 * 3600  # GCS refuses V4 signatures valid for longer
_TIMEOUT = (10, 60)  # (connect, read) seconds per HTTP request
_REQUEST_PREFIX = re.compile(r"^[A-Z]+ \S+: ")
_SDK_ERRORS = (
    api_exceptions.GoogleAPIError,
    auth_exceptions.GoogleAuthError,
    requests.RequestException,
    InvalidResponse,
    DataCorruption,
)


def _token_uri_allowed(token_uri: str, allowed: Tuple[str, ...]) -> bool:
    try:
        given = ssrf.parse_url(token_uri, what="token_uri")
    except ssrf.SSRFError:
        return False
    for url in allowed:
        try:
            if ssrf.parse_url(url, what="token_uri") == given:  # scheme, host, port and path
                return True
        except ssrf.SSRFError:
            continue
    return False


def _key_problem(info: dict, token_uris: Optional[Tuple[str, ...]]) -> Optional[str]:
    """What makes `info` unusable as a service-account key, or None. Never quotes a value."""
    wrong_type = [name for name in _STRING_FIELDS if info.get(name) is not None and not isinstance(info[name], str)]
    if wrong_type:
        return f"{FIELD}: {', '.join(wrong_type)} must be text (a string)"
    missing = [name for name in _SA_FIELDS if not info.get(name)]
    if info.get("type") != "service_account" or missing:
        detail = f" (missing {', '.join(missing)})" if missing else ""
        return f"{FIELD} is not a service account key{detail}"
    if info.get("universe_domain", _UNIVERSE) != _UNIVERSE:
        return f"{FIELD}: universe_domain must be {_UNIVERSE} (other Google Cloud universes are not supported)"
    if token_uris is not None and not _token_uri_allowed(info["token_uri"], token_uris):
        return (
            f"{FIELD}: token_uri must be one of Google's token endpoints ({', '.join(GOOGLE_TOKEN_URIS)}); "
            "the operator can allow others with GCS_TRUSTED_TOKEN_URIS"
        )
    key = None
    try:
        key = serialization.load_pem_private_key(info["private_key"].encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):  # UnicodeError is a ValueError
        pass
    if not isinstance(key, rsa.RSAPrivateKey):  # google-auth signs with RSA only
        return f"{FIELD}: the private key of this service account key cannot be read (an RSA key in PEM format)"
    return None


def _load_service_account(
    credentials_json: str, token_uris: Optional[Tuple[str, ...]] = None
) -> service_account.Credentials:
    """Parse and check the key without ever quoting it: errors are raised outside any `except`
    block so that no exception holding the text (JSONDecodeError.doc) is chained to them.
    `token_uris`: the token endpoints the key may name (None: any)."""
    try:
        info = json.loads(credentials_json)
    except (ValueError, RecursionError):  # RecursionError: nested too deeply
        info = None
    if not isinstance(info, dict):
        # Label Studio's sentence first; it adds the JSON error, which is left out here (see above).
        raise InvalidCredentials(
            f"Google Application Credentials must be valid JSON string. {FIELD} is not valid JSON: "
            "paste the whole service account key file"
        )
    problem = _key_problem(info, token_uris)
    if problem:
        raise InvalidCredentials(problem)
    credentials = None
    try:
        credentials = service_account.Credentials.from_service_account_info(info)
    except (ValueError, TypeError):
        pass
    if credentials is None:
        raise InvalidCredentials(f"{FIELD}: the private key of this service account key cannot be read")
    return credentials


class _TokenSession(requests.Session):
    """The HTTP session of access-token requests: a token endpoint's redirect is an answer
    (a failed refresh), never a place to send the signed assertion to."""

    def __init__(self):
        super().__init__()
        # What google-auth mounts on its own token session: retries of network errors.
        self.mount("https://", requests.adapters.HTTPAdapter(max_retries=3))

    def request(self, method, url, **kwargs):
        kwargs["allow_redirects"] = False
        return super().request(method, url, **kwargs)


def _api_client(project: Optional[str], credentials: Credentials) -> storage.Client:
    """A storage.Client whose token requests go through `_TokenSession` (the SDK's own
    session would follow redirects). Anonymous credentials fetch no tokens: the SDK's default."""
    if isinstance(credentials, AnonymousCredentials):
        return storage.Client(project=project, credentials=credentials)
    scoped = google.auth.credentials.with_scopes_if_required(credentials, storage.Client.SCOPE)
    http = AuthorizedSession(scoped, refresh_timeout=_TIMEOUT[1], auth_request=Request(_TokenSession()))
    return storage.Client(project=project, credentials=scoped, _http=http)


def _server_message(e: api_exceptions.GoogleAPICallError) -> str:
    """What GCS said, without the "GET <url>: " that the SDK puts in front of it."""
    return _REQUEST_PREFIX.sub("", e.message or "")


@functools.lru_cache(maxsize=32)
def _connect(
    credentials_json: Optional[str],
    project_id: Optional[str],
    emulator_host: Optional[str],
    token_uris: Optional[Tuple[str, ...]] = None,
    key_file: Optional[str] = None,
) -> Tuple[storage.Client, Optional[Credentials]]:
    """(API client, credentials able to sign URLs or None), shared by every GCSClient with the
    same configuration: credentials keep their access token and the client its connection
    pool, so a proxied request does not pay for a token fetch and a TLS handshake. The client
    is thread-safe (requests/urllib3 underneath). `emulator_host` is part of the cache key so
    that a changed STORAGE_EMULATOR_HOST gives a new client; `key_file` (the server's
    GOOGLE_APPLICATION_CREDENTIALS, only used under an emulator) likewise."""
    project = project_id
    if credentials_json:
        signer = _load_service_account(credentials_json, token_uris)
        project = project or signer.project_id
        api_credentials = AnonymousCredentials() if emulator_host else signer
    elif emulator_host:
        signer, api_credentials = _key_file_signer(key_file), AnonymousCredentials()
    else:
        try:
            api_credentials, default_project = google.auth.default()
        except auth_exceptions.DefaultCredentialsError:
            api_credentials = None
        if api_credentials is None:
            raise InvalidCredentials(
                f"No {FIELD} given and no default Google credentials in this environment "
                "(GOOGLE_APPLICATION_CREDENTIALS, gcloud or the metadata server)"
            )
        project = project or default_project
        # A key file named by GOOGLE_APPLICATION_CREDENTIALS signs; metadata-server tokens don't.
        signer = api_credentials if isinstance(api_credentials, Signing) else None
    # project=None (not omitted) stops the client from probing the environment for one:
    # object operations don't need a project.
    client = None
    try:
        client = _api_client(project or None, api_credentials)
    except (ValueError, TypeError):  # e.g. a universe the client does not talk to
        pass
    if client is None:
        raise InvalidCredentials(f"{FIELD}: these credentials cannot be used with Google Cloud Storage")
    return client, signer


def _key_file_signer(path: Optional[str]) -> Optional[Credentials]:
    """The server's key file, when it is a service-account key (other credentials cannot sign);
    google.auth.default() would read the same file outside an emulator."""
    if not path:
        return None
    unreadable = "GOOGLE_APPLICATION_CREDENTIALS does not name a readable credentials file"
    try:
        with open(path) as f:
            info = json.load(f)
    except (OSError, ValueError):
        raise InvalidCredentials(unreadable) from None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        return None
    try:
        return service_account.Credentials.from_service_account_info(info)
    except (ValueError, TypeError, KeyError):
        raise InvalidCredentials(unreadable) from None


class GCSClient(StorageClient):
    page_size = 1000  # objects per listing request (the GCS maximum)

    def __init__(
        self,
        bucket: str,
        *,
        credentials_json: Optional[str] = None,
        project_id: Optional[str] = None,
        retry_timeout: float = 10,
        token_uris: Optional[Tuple[str, ...]] = None,
    ):
        """`token_uris`: the token endpoints a key may name (None: any; `client_for` passes
        Google's and the operator's)."""
        super().__init__(bucket)
        # Form fields arrive as "" (or whitespace) when left empty.
        credentials_json = (credentials_json or "").strip() or None
        emulator_host = os.environ.get("STORAGE_EMULATOR_HOST") or None
        project_id = (project_id or "").strip() or None
        token_uris = tuple(token_uris) if token_uris is not None else None
        key_file = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS") or None if emulator_host else None
        self._client, self._signer = _connect(credentials_json, project_id, emulator_host, token_uris, key_file)
        self._bucket = self._client.bucket(bucket)
        # The SDK's default retries transient errors for 120 s: too long for a user waiting on
        # a validation or a proxied file. Uploads are retried too: rewriting the same bytes
        # under the same key is idempotent.
        self._call = {
            "retry": DEFAULT_RETRY.with_timeout(retry_timeout) if retry_timeout else None,
            "timeout": _TIMEOUT,
        }

    # --- error mapping -------------------------------------------------------
    @contextmanager
    def _errors(self, key: Optional[str] = None):
        """Translate Google errors; `key` says whether a 404 is about an object or the bucket
        (GCS answers "No such object" for a key in a missing bucket, so objects win)."""
        try:
            yield
        except _SDK_ERRORS as e:
            raise self._translate(e, key) from None

    def _translate(self, e: Exception, key: Optional[str]) -> StorageError:
        where = f"'{key}' in bucket '{self.bucket}'" if key is not None else f"bucket '{self.bucket}'"
        if isinstance(e, api_exceptions.RetryError) and e.cause is not None:
            return self._translate(e.cause, key)  # retries ran out: report the last failure
        if isinstance(e, InvalidResponse) and getattr(e, "response", None) is not None:
            # Media (upload/download) errors that escaped the SDK's own conversion, e.g. as
            # the last failure of a retry: read them like any other API error.
            return self._translate(api_exceptions.from_http_response(e.response), key)
        if isinstance(e, api_exceptions.NotFound):
            if key is None or "bucket does not exist" in (e.message or "").lower():
                return BucketNotFound(f"Bucket '{self.bucket}' does not exist")
            return ObjectNotFound(f"Object {where} does not exist")
        # InvalidOperation: a 401 made the session try to refresh anonymous credentials.
        if isinstance(e, (api_exceptions.Unauthorized, auth_exceptions.RefreshError, auth_exceptions.InvalidOperation)):
            return InvalidCredentials(f"Cannot authenticate to access {where}: check {FIELD}")
        if isinstance(e, api_exceptions.Forbidden):
            # GCS says which identity lacks which permission: useful, and not a secret.
            return AccessDenied(f"Access denied to {where}: {_server_message(e)}")
        if isinstance(e, api_exceptions.RequestRangeNotSatisfiable):
            return RangeNotSatisfiable(f"Requested range is past the end of {where}")
        if isinstance(e, api_exceptions.PreconditionFailed):
            return StorageError(f"Object {where} changed while it was being read")
        if isinstance(e, DataCorruption):
            return StorageError(f"Checksum mismatch while transferring {where}")
        if isinstance(e, api_exceptions.GoogleAPICallError):
            return StorageError(f"GCS error on {where}: {e.code} {_server_message(e)}".rstrip())
        if isinstance(e, (requests.RequestException, auth_exceptions.TransportError, api_exceptions.RetryError)):
            return StorageError(
                f"Cannot reach Google Cloud Storage at '{self._client.api_endpoint}' "
                f"for {where} ({type(e).__name__})"
            )
        return StorageError(f"GCS client error on {where} ({type(e).__name__})")

    # --- StorageClient ---------------------------------------------------------
    def list_objects(self, prefix: str = "", recursive: bool = True) -> Iterator[ObjectInfo]:
        blobs = self._client.list_blobs(
            self._bucket,
            prefix=prefix or None,
            delimiter=None if recursive else "/",  # sub-"folders" go to .prefixes, ignored
            page_size=self.page_size,
            **self._call,
        )
        with self._errors():
            for blob in blobs:  # the iterator fetches one page at a time
                if not blob.name.endswith("/"):  # folder placeholder made by consoles
                    yield self._info(blob)

    def stat(self, key: str) -> ObjectInfo:
        return self._info(self._reload(key))

    def _open_range(self, key: str, start: Optional[int], end: Optional[int]) -> ObjectStream:
        # Metadata first: the size validates the range (emulators answer past-the-end ranges
        # with an empty 206 instead of a 416) and the generation pins every chunk to this
        # version, so an object replaced mid-read fails instead of mixing two versions.
        blob = self._reload(key)
        size = blob.size or 0
        first = last = None
        if start is not None:
            if start >= size:
                raise RangeNotSatisfiable(f"Range {start}-{end} is past the end of '{key}' ({size} bytes)")
            first, last = start, size - 1 if end is None else min(end, size - 1)
        begin, length = (first, last - first + 1) if first is not None else (0, size)
        # BlobReader fetches max(n, chunk) bytes per request; a chunk no larger than the range
        # keeps a small range from downloading more than it needs.
        # raw_download: bytes as stored, gzip-encoded objects included (see ObjectStream).
        reader = BlobReader(
            blob,
            chunk_size=max(1, min(_READ_CHUNK, length)),
            if_generation_match=blob.generation,
            raw_download=True,
            **self._call,
        )
        reader.seek(begin)  # size is known: no request
        body = LimitedBody(reader, length, functools.partial(self._errors, key))
        return ObjectStream(info=self._info(blob), body=body, start=first, end=last, total_size=size)

    def presign(self, key: str, ttl_seconds: int, content_type: Optional[str] = None) -> str:
        if self._signer is None:
            raise StorageError(
                f"Signing a URL for '{key}' needs a service account key in {FIELD} "
                "(or turn presign off to stream files through the server)"
            )
        with self._errors(key):
            # Under an emulator the URL points at it: the client's endpoint is the emulator's.
            return self._bucket.blob(key).generate_signed_url(
                version="v4",
                expiration=timedelta(seconds=min(int(ttl_seconds), _MAX_SIGNED_URL_TTL)),
                method="GET",
                response_type=content_type,
                credentials=self._signer,
            )

    def write(self, key: str, data: bytes, content_type: str = "application/json") -> None:
        with self._errors(key):
            self._bucket.blob(key).upload_from_string(data, content_type=content_type, **self._call)

    def delete(self, key: str) -> None:
        with self._errors(key):
            try:
                self._bucket.blob(key).delete(**self._call)
            except api_exceptions.NotFound:
                pass  # already gone: the interface says that is not an error

    def check(self, prefix: Optional[str] = None) -> None:
        # One objects.list answers both questions (a missing bucket is a 404) and needs only
        # storage.objects.list, which read-only roles have; buckets.get (bucket.reload) is
        # missing from e.g. roles/storage.objectViewer and would fail for a usable key.
        with self._errors():
            found = list(self._client.list_blobs(self._bucket, prefix=prefix or None, max_results=1, **self._call))
        if prefix is not None and not found:
            # Label Studio's wording, which says it all.
            raise StorageError(f"No blobs found in {self.bucket}/{prefix} or prefix doesn't exist")

    # --- helpers -------------------------------------------------------------
    def _reload(self, key: str) -> storage.Blob:
        blob = self._bucket.blob(key)
        with self._errors(key):
            blob.reload(**self._call)
        return blob

    @staticmethod
    def _info(blob: storage.Blob) -> ObjectInfo:
        return ObjectInfo(
            key=blob.name,
            size=blob.size,
            last_modified=blob.updated,
            etag=blob.etag,
            content_type=blob.content_type,
            content_encoding=blob.content_encoding,
        )


def allowed_token_uris() -> Tuple[str, ...]:
    """Google's token endpoints and the operator's (GCS_TRUSTED_TOKEN_URIS)."""
    return GOOGLE_TOKEN_URIS + tuple(getattr(settings, "GCS_TRUSTED_TOKEN_URIS", ()))


def client_for(storage) -> GCSClient:
    """The client of a GCS storage. Empty credentials would be the server's own identity
    (application default credentials, or anonymous access to the operator's emulator):
    refused unless the operator allows it."""
    if not (storage.google_application_credentials or "").strip():
        ssrf.require_credentials(f"{FIELD} (a service account key) is")
    return GCSClient(
        storage.bucket,
        credentials_json=storage.google_application_credentials,
        project_id=storage.google_project_id,
        token_uris=allowed_token_uris(),
    )
