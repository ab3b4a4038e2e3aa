"""Redis import/export storages: task JSON (or blobs) stored as values under a key prefix."""

from django.db import models

from io_storages.base_models import (
    ExportStorage,
    ExportStorageLink,
    ImportStorage,
    ImportStorageLink,
    ProjectStorageMixin,
)
from io_storages.fields import EncryptedTextField


class RedisStorageMixin(models.Model):
    prefix_field = "path"  # Redis keys are flat: the path is a key prefix, and URIs hold whole keys
    secret_fields = ("password",)
    address_fields = ("host", "port")

    path = models.TextField(null=True, blank=True, help_text="Key prefix of the storage's keys")
    host = models.TextField(null=True, blank=True, help_text="Redis host (default 127.0.0.1)")
    port = models.PositiveIntegerField(null=True, blank=True, help_text="Redis port (default 6379)")
    password = EncryptedTextField(null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def location(self):
        return f"redis://{self.host or '127.0.0.1'}:{self.port or 6379}/{self.db} {self.path or ''}"


class RedisImportStorage(ProjectStorageMixin, RedisStorageMixin, ImportStorage):
    db = models.PositiveSmallIntegerField(default=1, help_text="Redis database number")


class RedisExportStorage(ProjectStorageMixin, RedisStorageMixin, ExportStorage):
    db = models.PositiveSmallIntegerField(default=2, help_text="Redis database number")


class RedisImportStorageLink(ImportStorageLink):
    storage = models.ForeignKey(RedisImportStorage, on_delete=models.CASCADE, related_name="links")

    class Meta:
        indexes = [models.Index(fields=["storage", "key"], name="redis_import_link_key")]


class RedisExportStorageLink(ExportStorageLink):
    storage = models.ForeignKey(RedisExportStorage, on_delete=models.CASCADE, related_name="links")
