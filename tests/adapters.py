"""Every provider's contract adapter, by storage type (see tests/providers.py).

Kept apart from tests/providers.py, which the fixture modules import for the base class: the
list imports the fixture modules, so it cannot live there without an import cycle.
"""

from tests.fixtures import azure, gcs, localfiles, redis_server
from tests.providers import S3Adapter

ADAPTERS = {
    adapter.kind: adapter
    for adapter in (S3Adapter, gcs.ADAPTER, azure.ADAPTER, redis_server.ADAPTER, localfiles.ADAPTER)
}
# Storage types whose objects can carry a Content-Encoding (S3, GCS, Azure).
ENCODING_KINDS = sorted(kind for kind, adapter in ADAPTERS.items() if adapter.stores_content_encoding)
