"""The storage providers the service knows, and every lookup over them.

A provider is one entry in `PROVIDERS` plus its package `io_storages/<package>/`:
`models.py` (the import and export storage models with their connection fields) and
`client.py` (the `StorageClient` over its SDK and `client_for(storage)`, which builds one from
a storage's fields). The API, serializers, admin, commands, sync, export and file serving are
generic over these entries: nothing else names a provider.

Models and clients are imported by dotted path when first used, so reading this module (and
loading Django's models) does not import any SDK.
"""

import threading
import time
from dataclasses import dataclass
from functools import cache, cached_property

from django.apps import apps
from django.utils.module_loading import import_string


@dataclass(frozen=True)
class Provider:
    type: str  # API path segment and the storages' `type` field: s3, gcs, azure, redis, localfiles
    title: str
    package: str  # io_storages.<package> holds models.py and client.py
    import_model_name: str
    export_model_name: str
    #: URI scheme of the provider's objects in task data (`s3://bucket/key`); None when its
    #: objects have no such URIs (local files are addressed as /data/local-files/?d=<path>)
    scheme: str | None
    #: URIs name a bucket/container (`scheme://bucket/key`); else they hold the key alone
    has_buckets: bool
    #: can hand out time-limited URLs: its import storages have `presign` and `presign_ttl`
    presigns: bool
    #: has an object-notification adapter, `<package>/events.py` (see io_storages.events):
    #: its import storages may set `event_queue`
    has_events: bool = False

    @cached_property
    def import_model(self):
        return import_string(f"{self.package}.models.{self.import_model_name}")

    @cached_property
    def export_model(self):
        return import_string(f"{self.package}.models.{self.export_model_name}")

    def model(self, export=False):
        return self.export_model if export else self.import_model

    @property
    def client_module(self):
        return f"{self.package}.client"

    def new_client(self, storage):
        """A new `StorageClient` for `storage` (one of this provider's models)."""
        return import_string(f"{self.client_module}.client_for")(storage)

    @property
    def events_module(self):
        """The dotted path of the provider's notification adapter (None: it has none)."""
        return f"{self.package}.events" if self.has_events else None


PROVIDERS = {
    p.type: p
    for p in [
        Provider(
            type="s3",
            title="AWS S3",
            package="io_storages.s3",
            import_model_name="S3ImportStorage",
            export_model_name="S3ExportStorage",
            scheme="s3",
            has_buckets=True,
            presigns=True,
            has_events=True,  # S3 event notifications through SQS
        ),
        Provider(
            type="gcs",
            title="Google Cloud Storage",
            package="io_storages.gcs",
            import_model_name="GCSImportStorage",
            export_model_name="GCSExportStorage",
            scheme="gs",
            has_buckets=True,
            presigns=True,
        ),
        Provider(
            type="azure",
            title="Microsoft Azure",
            package="io_storages.azure_blob",
            import_model_name="AzureBlobImportStorage",
            export_model_name="AzureBlobExportStorage",
            scheme="azure-blob",
            has_buckets=True,
            presigns=True,
        ),
        Provider(
            type="redis",
            title="Redis",
            package="io_storages.redis",
            import_model_name="RedisImportStorage",
            export_model_name="RedisExportStorage",
            scheme="redis",
            has_buckets=False,
            presigns=False,
        ),
        Provider(
            type="localfiles",
            title="Local files",
            package="io_storages.localfiles",
            import_model_name="LocalFilesImportStorage",
            export_model_name="LocalFilesExportStorage",
            scheme=None,
            has_buckets=False,
            presigns=False,
        ),
    ]
}


# --- lookups -----------------------------------------------------------------


def provider(storage_type):
    """The provider named `storage_type` (KeyError for an unknown one)."""
    return PROVIDERS[storage_type]


def provider_for_scheme(scheme):
    """The provider whose URIs start with `scheme://`, or None."""
    return next((p for p in PROVIDERS.values() if p.scheme and p.scheme == scheme), None)


def provider_of(model):
    """The provider a storage model (class or instance) belongs to."""
    return _provider_of_class(model if isinstance(model, type) else type(model))


@cache
def _provider_of_class(model):
    for p in PROVIDERS.values():
        if model is p.import_model or model is p.export_model:
            return p
    raise LookupError(f"{model.__name__} is not a storage model of the registry")


def storage_model(storage_type, export=False):
    return PROVIDERS[storage_type].model(export)


def all_storage_models(export=False):
    return [p.model(export) for p in PROVIDERS.values()]


def storages(export=False, schemes=None, defer=(), **filters):
    """Storages of every type matching `filters` (one query per type), oldest first within a
    type; only of the providers whose URI scheme is in `schemes` when it is given.

    Rows are sorted here: an ORDER BY costs Django more to build (0.1 ms) than sorting a few
    rows, and the file-serving path runs this on every request.
    """
    found = []
    for p in PROVIDERS.values():
        if schemes is None or p.scheme in schemes:
            rows = p.model(export).objects.filter(**filters)
            found += sorted(rows.defer(*defer) if defer else rows, key=lambda storage: storage.pk)
    return found


def project_storages(project_id, export=False, **options):
    """Every import (or export) storage of one project, all types."""
    return storages(export, project_id=project_id, **options)


# --- how jobs name a storage (they carry plain strings) -------------------------


def model_label(model):
    """`app_label.ModelName` of a storage model."""
    return model._meta.label


def storage_from_label(label, pk):
    """The storage a job names, or None when it was deleted meanwhile."""
    return apps.get_model(label).objects.filter(pk=pk).first()


# --- clients shared between requests ----------------------------------------------

_clients = {}  # (model label, connection settings) -> (client, expiry)
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
    key = (model_label(type(storage)), storage.connection_settings())
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
