"""What the storage contract tests need to know about each provider, and nothing more.

An adapter seeds and inspects objects directly on the provider's real server (not through the
service) and builds the API configuration of a storage. `tests/test_storage_contract.py`
runs the same behaviours for every adapter in `tests.adapters.ADAPTERS`; each provider's
fixture module (tests/fixtures/<provider>.py) defines its adapter next to its server.
"""

import uuid

from tests.fixtures.servers import S3_ACCESS_KEY, S3_REGION, S3_SECRET_KEY, s3_admin


class Adapter:
    kind = ""  # storage type in the API
    server_fixture = ""  # session fixture giving the server (URL, handle...)
    secret_values = ()  # values that must never appear in API responses
    stores_content_encoding = False  # objects can carry a Content-Encoding (put(content_encoding=))

    def __init__(self, server):
        self.server = server

    def new_location(self):
        """A fresh, empty bucket/container/directory; returns what config() takes."""
        raise NotImplementedError

    def config(self, location, prefix=None, **fields):
        """API fields of a storage at `location` (optionally below `prefix`)."""
        raise NotImplementedError

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


class S3Adapter(Adapter):
    kind = "s3"
    server_fixture = "s3_server"
    secret_values = (S3_SECRET_KEY, S3_ACCESS_KEY)
    stores_content_encoding = True

    def new_location(self):
        name = f"test-{uuid.uuid4().hex}"
        s3_admin(self.server).create_bucket(Bucket=name)
        return name

    def config(self, location, prefix=None, **fields):
        return {
            "bucket": location,
            "prefix": prefix,
            "s3_endpoint": self.server,
            "aws_access_key_id": S3_ACCESS_KEY,
            "aws_secret_access_key": S3_SECRET_KEY,
            "region_name": S3_REGION,
            **fields,
        }

    def missing_location_config(self):
        return self.config("no-such-bucket-here")

    def put(self, location, key, body, content_encoding=None):
        extra = {"ContentEncoding": content_encoding} if content_encoding else {}
        s3_admin(self.server).put_object(Bucket=location, Key=key, Body=body, **extra)

    def keys(self, location):
        pages = s3_admin(self.server).get_paginator("list_objects_v2").paginate(Bucket=location)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def read(self, location, key):
        return s3_admin(self.server).get_object(Bucket=location, Key=key)["Body"].read()

    def delete(self, location, key):
        s3_admin(self.server).delete_object(Bucket=location, Key=key)

    def uri(self, location, key):
        return f"s3://{location}/{key}"
