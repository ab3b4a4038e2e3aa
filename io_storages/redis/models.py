"""Redis import/export storages: task JSON (or blobs) stored as values under a key prefix."""

from django.db import models

from io_storages.base_models import ExportStorage, ImportStorage, ProjectStorageMixin, link_models


class RedisStorageMixin(models.Model):
    storage_type = "redis"
    url_scheme = "redis"
    secret_fields = ("password",)

    path = models.TextField(null=True, blank=True, help_text="Key prefix of the storage's keys")
    host = models.TextField(null=True, blank=True, help_text="Redis host (default 127.0.0.1)")
    port = models.PositiveIntegerField(null=True, blank=True, help_text="Redis port (default 6379)")
    password = models.TextField(null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def prefix(self):
        """Redis keys are flat: `path` plays the part of a bucket prefix."""
        return self.path

    def key_for_uri(self, scheme, bucket, key):
        """`redis://<full key>`: served when the key lies under this storage's path."""
        full_key = f"{bucket}/{key}" if key else bucket
        if scheme == self.url_scheme and full_key.startswith(self.key_prefix):
            return full_key
        return None

    @property
    def location(self):
        return f"redis://{self.host or '127.0.0.1'}:{self.port or 6379}/{self.db} {self.path or ''}"

    def get_client(self):
        from django.conf import settings

        from core.ssrf import check_host, is_trusted_endpoint
        from io_storages.redis.client import RedisClient, resolve_checked

        host, port = self.host or "127.0.0.1", self.port or 6379
        address = None
        # `host` is user-typed (SSRF). Operators may allow a private Redis by listing it in
        # SSRF_TRUSTED_ENDPOINTS as redis://host:port.
        netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"  # IPv6 literals in brackets
        if settings.SSRF_PROTECTION_ENABLED and not is_trusted_endpoint(f"redis://{netloc}"):
            check_host(host, port)  # local names are refused before any lookup, with the reason
            # Connect-time check: resolve once more, check what we got and connect to exactly
            # that address, so DNS cannot answer differently when redis-py connects (rebinding).
            address = resolve_checked(host, port, check_host)
        return RedisClient(self.path or "", host=host, port=port, password=self.password, db=self.db, address=address)


class RedisImportStorage(ProjectStorageMixin, RedisStorageMixin, ImportStorage):
    db = models.PositiveSmallIntegerField(default=1, help_text="Redis database number")


class RedisExportStorage(ProjectStorageMixin, RedisStorageMixin, ExportStorage):
    db = models.PositiveSmallIntegerField(default=2, help_text="Redis database number")


RedisImportStorageLink, RedisExportStorageLink = link_models(RedisImportStorage, RedisExportStorage, "redis")
