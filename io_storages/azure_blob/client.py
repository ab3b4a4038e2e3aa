"""Azure Blob Storage (and Azurite) behind `StorageClient`.

The only module that imports azure-storage-blob. Every SDK call runs inside `_errors()`,
which turns azure-core exceptions into the interface's `StorageError` subclasses with
messages that name the container/key/endpoint host but never the account key (server
messages are not quoted at all, and SDK exceptions are not chained).

The endpoint comes from the operator (settings.AZURE_BLOB_ENDPOINT, default
`https://{account_name}.blob.core.windows.net`), never from users. The user-given account
name is substituted into it, so it is checked against Azure's naming rule first: a name like
`169.254.169.254#` would otherwise choose the host (SSRF). With that, no connect-time guard
is needed.
"""

from __future__ import annotations

import base64
import binascii
import re
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Iterator, Optional
from urllib.parse import urlsplit

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import (
    BlobPrefix,
    BlobSasPermissions,
    BlobServiceClient,
    ContentSettings,
    ExponentialRetry,
    generate_blob_sas,
)
from django.conf import settings

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

DEFAULT_ENDPOINT = "https://{account_name}.blob.core.windows.net"
LIST_PAGE_SIZE = 1000  # blobs per List Blobs request (the service maximum is 5000)
# The SDK's first GET of a download is buffered whole (default 32 MiB): keep an open stream's
# memory to one chunk. Later chunks are fetched as the body is read.
DOWNLOAD_CHUNK_SIZE = 4 * 1024 * 1024

# Azure's rule for storage account names; also what keeps the name from altering the host.
_ACCOUNT_NAME = re.compile(r"[a-z0-9]{3,24}")
# Real Azure answers a bad signature with AuthenticationFailed; Azurite with
# AuthorizationFailure, whose message (like Azure's) says it "failed to authenticate".
_CREDENTIAL_CODES = {"AuthenticationFailed", "InvalidAuthenticationInfo"}
_TOTAL_SIZE = re.compile(r"/(\d+)$")  # "bytes 2-5/10" -> 10
_CREDENTIALS_HINT = "check account_name / account_key (or AZURE_BLOB_ACCOUNT_NAME / AZURE_BLOB_ACCOUNT_KEY)"


def _retry_policy():
    # The SDK default waits 15 s, 18 s, 24 s between attempts: a validate request against an
    # unreachable endpoint would hang for a minute. A refused connection is retried once.
    return ExponentialRetry(initial_backoff=1, increment_base=2, retry_total=3, retry_connect=1, random_jitter_range=1)


def _code(error: AzureError) -> str:
    code = getattr(error, "error_code", None)  # a StorageErrorCode (str enum), a str or None
    return str(getattr(code, "value", code) or "")


def _info(blob, size: Optional[int] = None) -> ObjectInfo:
    """ObjectInfo of a BlobProperties (from a listing, a HEAD or a download, whose own size is
    only the downloaded range's: `size` then gives the whole blob's)."""
    content_settings = blob.content_settings
    return ObjectInfo(
        key=blob.name,
        size=blob.size if size is None else size,
        last_modified=blob.last_modified,
        etag=unquote_etag(blob.etag),
        content_type=content_settings.content_type if content_settings else None,
        content_encoding=content_settings.content_encoding if content_settings else None,
    )


class _Body:
    """The body of an open download: `read(n)` fetches chunks as they are consumed (never
    the whole blob at once), with errors raised mid-stream translated like any other."""

    def __init__(self, client: "AzureBlobClient", key: str, downloader):
        self._client, self._key, self._downloader = client, key, downloader

    def read(self, n: int = -1) -> bytes:
        if self._downloader is None:
            return b""
        with self._client._errors(self._key):
            return self._downloader.read(n)

    def close(self) -> None:
        # Every chunk response is read to its end by the SDK, so no connection is held open:
        # dropping the downloader frees its buffered chunk.
        self._downloader = None


class AzureBlobClient(StorageClient):

    def __init__(
        self,
        container: str,
        *,
        account_name: Optional[str] = None,
        account_key: Optional[str] = None,
        endpoint: Optional[str] = None,
    ):
        super().__init__(container)  # self.bucket is the container
        missing = [name for name, value in (("account_name", account_name), ("account_key", account_key)) if not value]
        if missing:  # Label Studio's wording first, then which one is missing
            raise InvalidCredentials(
                "Azure account name and key must be set using environment variables AZURE_BLOB_ACCOUNT_NAME "
                "and AZURE_BLOB_ACCOUNT_KEY or account_name and account_key fields: "
                f"the storage of container '{container}' has no {' and no '.join(missing)}"
            )
        if not _ACCOUNT_NAME.fullmatch(account_name):  # fullmatch: "$" would allow a trailing "\n"
            raise InvalidCredentials("account_name must be 3 to 24 lowercase letters and digits")
        try:
            base64.b64decode(account_key)  # what the SDK does before signing anything
        except (binascii.Error, ValueError):
            raise InvalidCredentials(f"account_key is not a valid base64 key: {_CREDENTIALS_HINT}") from None
        self.account_name = account_name
        self._account_key = account_key
        self.endpoint = (endpoint or DEFAULT_ENDPOINT).replace("{account_name}", account_name).rstrip("/")
        if urlsplit(self.endpoint).scheme not in ("http", "https"):
            raise StorageError("AZURE_BLOB_ENDPOINT must be an http:// or https:// URL")
        self.endpoint_host = urlsplit(self.endpoint).netloc
        # Azure SDK clients are thread-safe: one service/container client serves every thread.
        self._service = BlobServiceClient(
            account_url=self.endpoint,
            credential={"account_name": account_name, "account_key": account_key},
            retry_policy=_retry_policy(),
            connection_timeout=10,  # an address that never answers fails in seconds
            read_timeout=60,
            max_single_get_size=DOWNLOAD_CHUNK_SIZE,
            max_chunk_get_size=DOWNLOAD_CHUNK_SIZE,
        )
        self._container = self._service.get_container_client(container)

    # --- error mapping -------------------------------------------------------
    @contextmanager
    def _errors(self, key: Optional[str] = None, checking: bool = False):
        """Translate azure-core errors; `key` says whether a bare 404 means blob or container
        (HEAD responses carry the error code only in a header, which proxies may drop).
        `checking`: the connection check, which words a missing container as Label Studio does."""
        where = f"'{key}' in container '{self.bucket}'" if key is not None else f"container '{self.bucket}'"
        try:
            yield
        except ResourceNotFoundError as e:
            if _code(e) == "ContainerNotFound" or key is None:
                raise BucketNotFound(
                    f"Container not found: {self.bucket}" if checking else f"Container '{self.bucket}' does not exist"
                ) from None
            raise ObjectNotFound(f"Object {where} does not exist") from None
        except ClientAuthenticationError:  # AuthenticationFailed, or a key the SDK cannot sign with
            raise InvalidCredentials(f"Cannot access container '{self.bucket}': {_CREDENTIALS_HINT}") from None
        except HttpResponseError as e:
            code, status = _code(e), e.status_code
            if code in _CREDENTIAL_CODES or (status == 403 and "failed to authenticate" in (e.message or "")):
                raise InvalidCredentials(f"Cannot access container '{self.bucket}': {_CREDENTIALS_HINT}") from None
            if status == 403:
                raise AccessDenied(
                    f"Access denied to {where} ({code or status}): check the account's permissions " "and network rules"
                ) from None
            if code == "InvalidRange" or status == 416:
                raise RangeNotSatisfiable(f"Requested range is past the end of {where}") from None
            raise StorageError(f"Azure Blob error on {where}: {code or 'HTTP'} {status or ''}".rstrip()) from None
        except (ServiceRequestError, ServiceResponseError) as e:  # connection refused, DNS, timeouts
            raise StorageError(
                f"Cannot reach Azure Blob endpoint '{self.endpoint_host}' "
                f"for container '{self.bucket}' ({type(e).__name__})"
            ) from None
        except AzureError as e:
            raise StorageError(f"Azure Blob client error on {where} ({type(e).__name__})") from None

    # --- StorageClient ---------------------------------------------------------
    def list_objects(self, prefix: str = "", recursive: bool = True) -> Iterator[ObjectInfo]:
        if recursive:
            blobs = self._container.list_blobs(name_starts_with=prefix or None, results_per_page=LIST_PAGE_SIZE)
        else:
            blobs = self._container.walk_blobs(
                name_starts_with=prefix or None, delimiter="/", results_per_page=LIST_PAGE_SIZE
            )
        with self._errors():  # ItemPaged fetches the next page while we iterate
            for blob in blobs:
                # BlobPrefix: a sub-"folder" of a top-level listing; "x/": a folder placeholder
                if isinstance(blob, BlobPrefix) or blob.name.endswith("/"):
                    continue
                yield _info(blob)

    def stat(self, key: str) -> ObjectInfo:
        with self._errors(key):
            return _info(self._container.get_blob_client(key).get_blob_properties())

    def _open_range(self, key: str, start: Optional[int], end: Optional[int]) -> ObjectStream:
        ranged, offset = start is not None, start  # open() validated the range (end implies start)
        length = None if end is None else end - start + 1  # None: to the end of the blob
        with self._errors(key):  # a start past the end is refused here: 416 InvalidRange
            # decompress=False: bytes as stored, like every provider (see ObjectStream).
            downloader = self._container.download_blob(key, offset=offset, length=length, decompress=False)
        props = downloader.properties
        # For a range, props.size is the range's length; Content-Range ends with the blob's.
        match = _TOTAL_SIZE.search(props.content_range or "")
        total = int(match[1]) if match else props.size
        first = last = None
        if ranged:
            if offset >= total:  # Azure answers 416, but Azurite an empty 206 for start == size
                raise RangeNotSatisfiable(f"Requested range is past the end of '{key}' in container '{self.bucket}'")
            first, last = offset, offset + downloader.size - 1  # an end past the blob is clamped
        info = _info(props, size=total)
        return ObjectStream(info=info, body=_Body(self, key, downloader), start=first, end=last, total_size=total)

    def presign(self, key: str, ttl_seconds: int, content_type: Optional[str] = None) -> str:
        # No start time: a start "now" is refused by servers whose clock runs a little behind.
        sas = generate_blob_sas(
            self.account_name,
            self.bucket,
            key,
            account_key=self._account_key,
            permission=BlobSasPermissions(read=True),
            expiry=datetime.now(timezone.utc) + timedelta(seconds=int(ttl_seconds)),
            content_type=content_type,  # served as the response's Content-Type
        )
        return f"{self._container.get_blob_client(key).url}?{sas}"

    def write(self, key: str, data: bytes, content_type: str = "application/json") -> None:
        with self._errors(key):
            self._container.upload_blob(
                key, data, overwrite=True, content_settings=ContentSettings(content_type=content_type)
            )

    def delete(self, key: str) -> None:
        try:
            with self._errors(key):
                # "include": a blob with snapshots cannot be deleted on its own.
                self._container.delete_blob(key, delete_snapshots="include")
        except ObjectNotFound:
            pass  # already gone; a missing container still raises BucketNotFound

    def check(self, prefix: Optional[str] = None) -> None:
        with self._errors(checking=True):
            if prefix is None:
                self._container.get_container_properties()
                return
            # A listing also answers ContainerNotFound, so one request covers both checks.
            found = next(iter(self._container.list_blobs(name_starts_with=prefix or None, results_per_page=1)), None)
        if found is None:
            # Label Studio's wording first: "azure-blob://<container>/<prefix> not found."
            raise StorageError(
                f"azure-blob://{self.bucket}/{prefix} not found. No objects found in container '{self.bucket}' "
                f"under prefix '{prefix}'"
            )


def client_for(storage) -> AzureBlobClient:
    """The client of an Azure storage. A storage that leaves account_name or account_key
    empty gets AZURE_BLOB_ACCOUNT_NAME / AZURE_BLOB_ACCOUNT_KEY, the server's own account:
    only when the operator allows it (STORAGE_SERVER_CREDENTIALS_ENABLED)."""
    if not storage.account_name or not storage.account_key:
        ssrf.require_credentials("account_name and account_key are")
    return AzureBlobClient(
        storage.container,
        account_name=storage.account_name or settings.AZURE_BLOB_ACCOUNT_NAME,
        account_key=storage.account_key or settings.AZURE_BLOB_ACCOUNT_KEY,
        endpoint=settings.AZURE_BLOB_ENDPOINT,
    )
