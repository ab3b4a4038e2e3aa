"""Every provider's contract adapter (a tests.adapter.Adapter), by storage type.

Each fixture module defines its provider's adapter as `ADAPTER`, next to its server; the
`provider` fixture (tests/conftest.py) binds one to its server for each storage type.
"""

from tests.fixtures import azure, gcs, localfiles, redis_server, s3

ADAPTERS = {module.ADAPTER.kind: module.ADAPTER for module in (s3, gcs, azure, redis_server, localfiles)}
# Storage types whose objects can carry a Content-Encoding (S3, GCS, Azure).
ENCODING_KINDS = sorted(kind for kind, adapter in ADAPTERS.items() if adapter.stores_content_encoding)
