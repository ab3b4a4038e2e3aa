"""The base class of the contract adapters: what the storage contract tests need to know about
each provider, and nothing more.

An adapter seeds and inspects objects directly on the provider's real server (not through the
service) and builds the API configuration of a storage. Each provider's fixture module
(tests/fixtures/<provider>.py) defines its adapter, as `ADAPTER`, next to its server;
tests/providers.py lists them all, and `tests/test_storage_contract.py` runs the same
behaviours for every one. This module imports no fixture module, so that all of them can
import it.
"""


class Adapter:
    kind = ""  # storage type in the API
    server_fixture = ""  # session fixture giving the server (URL, handle...)
    secret_values = ()  # values that must never appear in API responses
    stores_content_encoding = False  # objects can carry a Content-Encoding (put(content_encoding=))
    # A prefix is a part of the location that must hold objects for an import storage; local
    # files have none: config()'s prefix is a sub-directory, a location of its own.
    has_prefix = True

    def __init__(self, server):
        self.server = server

    def new_location(self):
        """A fresh, empty bucket/container/directory; returns what config() takes."""
        raise NotImplementedError

    def config(self, location, prefix=None, **fields):
        """API fields of a storage at `location` (optionally below `prefix`)."""
        raise NotImplementedError

    def unprefixed_config(self, location):
        """Config of a storage of the whole location, without a prefix."""
        return self.config(location)

    def missing_location_config(self):
        """Config of a storage whose bucket/container/directory does not exist."""
        raise NotImplementedError

    def put(self, location, key, body: bytes):
        raise NotImplementedError

    def keys(self, location):
        """All object keys at `location`, sorted."""
        raise NotImplementedError

    def read(self, location, key) -> bytes:
        raise NotImplementedError

    def delete(self, location, key):
        raise NotImplementedError

    def uri(self, location, key):
        """The URL a blob-mode task holds for `key`."""
        raise NotImplementedError

    def client_key(self, location, key):
        """How the storage's client names `key` of `location` (most providers: the same)."""
        return key

    def client(self, location):
        """The service's own client for a storage at `location`, built as the API builds it."""
        from io_storages.registry import storage_model

        model = storage_model(self.kind)
        fields = {k: v for k, v in self.config(location).items() if v is not None}
        return model(**fields).get_client()
