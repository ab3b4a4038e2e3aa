"""Finding which import storage serves a URI, and rewriting storage URIs in task data.

A task may hold `s3://bucket/key` (or gs://, azure-blob://, redis://) anywhere in its data,
also inside longer strings (HTML). Served tasks get those URIs replaced by the service's
resolve URL, which checks access and redirects to or streams the object. The storage whose
bucket matches serves a URI, so tasks from bucket A can point at files in bucket B.
"""

import base64
import binascii
import re
import threading
import time
from urllib.parse import urlsplit

from django.conf import settings

from io_storages import registry


def split_uri(uri):
    """`scheme://bucket/key` -> (scheme, bucket, key); None when it is not such a URI."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return None
    if not parts.scheme or not parts.netloc:
        return None
    key = parts.path.lstrip("/")
    if parts.query:  # a key may contain "?"
        key += "?" + parts.query
    return parts.scheme, parts.netloc, key


def import_storages(schemes=None, **filters):
    """Import storages of every type matching `filters` (one query per type), or only of the
    types whose URL scheme is in `schemes`.

    The last sync's report is left out: resolving never reads it, and `traceback` holds a
    line per failed object, megabytes after a large sync that went wrong.
    """
    storages = []
    for model in registry.all_storage_models(export=False):
        if schemes is None or model.url_scheme in schemes:
            rows = model.objects.filter(**filters).defer("traceback", "meta")
            # Oldest first, so the same storage serves a URI every time; sorted here because
            # an ORDER BY costs Django more to build (0.1 ms) than sorting a few rows.
            storages += sorted(rows, key=lambda storage: storage.pk)
    return storages


def project_import_storages(project_id, schemes=None):
    return import_storages(schemes, project_id=project_id)


def storage_for_uri(uri, **filters):
    """The storage serving `uri` among those matching `filters`, and the key inside it, or
    (None, None): one query."""
    parts = split_uri(uri)
    if parts is None:
        return None, None
    return find_storage(import_storages({parts[0]}, **filters), uri)


_clients = {}  # connection settings -> (client, expiry); see shared_client
_clients_lock = threading.Lock()
_CLIENT_TTL = 300.0
_CLIENT_CACHE_SIZE = 64


def shared_client(storage):
    """A client for `storage`, reused between requests of this process.

    Building an SDK client costs several ms of CPU and a new connection pool: per request it
    would dominate a small proxied read. Clients are keyed by every connection setting
    (secrets included), so an edited storage gets a new one; entries expire after a few
    minutes so credential or DNS changes outside the service are picked up.
    """
    key = (type(storage)._meta.label, storage.connection_settings())
    now = time.monotonic()
    with _clients_lock:
        cached = _clients.get(key)
        if cached and cached[1] > now:
            return cached[0]
    client = storage.get_client()
    with _clients_lock:
        if len(_clients) >= _CLIENT_CACHE_SIZE:
            _clients.clear()
        _clients[key] = (client, now + _CLIENT_TTL)
    return client


def find_storage(storages, uri):
    """The first storage that can serve `uri` and the object key inside it, or (None, None)."""
    parts = split_uri(uri)
    if parts is None:
        return None, None
    for storage in storages:
        key = storage.key_for_uri(*parts)
        if key is not None:
            return storage, key
    return None, None


def encode_fileuri(uri):
    return base64.urlsafe_b64encode(uri.encode()).decode()


def decode_fileuri(value):
    """The URI a `fileuri` parameter carries: urlsafe base64, or a plain URI (older clients)."""
    if "://" in value:
        return value
    try:
        padded = value + "=" * (-len(value) % 4)
        return base64.urlsafe_b64decode(padded.encode()).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return value


class TaskDataResolver:
    """Rewrites the storage URIs of many tasks of one project; the project's storages are
    loaded once, and only when a candidate URI is found."""

    def __init__(self, project_id, base_url=""):
        self.project_id = project_id
        self.base_url = (settings.HOSTNAME or base_url).rstrip("/")
        self._storages = None
        self._pattern = None

    @property
    def storages(self):
        if self._storages is None:
            self._storages = project_import_storages(self.project_id)
        return self._storages

    @property
    def pattern(self):
        if self._pattern is None:
            schemes = sorted({s.url_scheme for s in self.storages if s.url_scheme != "localfiles"})
            if not schemes:
                self._pattern = False
            else:
                alternatives = "|".join(re.escape(s) for s in schemes)
                self._pattern = re.compile(rf"(?:{alternatives})://[^\s\"'<>]+")
        return self._pattern

    def resolve_url(self, task_id, uri):
        return f"{self.base_url}/tasks/{task_id}/resolve/?fileuri={encode_fileuri(uri)}"

    def rewrite(self, task_id, data):
        """`data` with every resolvable URI replaced (a new structure; the input is untouched)."""
        if isinstance(data, dict):
            return {k: self.rewrite(task_id, v) for k, v in data.items()}
        if isinstance(data, list):
            return [self.rewrite(task_id, v) for v in data]
        if isinstance(data, str) and "://" in data and self.pattern:
            return self.pattern.sub(lambda m: self._replace(task_id, m.group(0)), data)
        return data

    def _replace(self, task_id, uri):
        storage, _ = find_storage(self.storages, uri)
        return self.resolve_url(task_id, uri) if storage else uri
