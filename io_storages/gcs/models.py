"""Google Cloud Storage import/export storages and their links."""

from django.db import models

from io_storages.base_models import (
    ExportStorage,
    ExportStorageLink,
    ImportStorage,
    ImportStorageLink,
    PresignMixin,
    ProjectStorageMixin,
)
from io_storages.fields import EncryptedTextField


class GCSStorageMixin(models.Model):
    bucket_field = "bucket"
    prefix_field = "prefix"
    secret_fields = ("google_application_credentials",)
    # No address field: the key goes to the token endpoint it names itself (checked against
    # the allowed ones) and to Google's API, whatever the bucket.

    bucket = models.TextField(help_text="GCS bucket name")
    prefix = models.TextField(null=True, blank=True, help_text="Key prefix (folder) inside the bucket")
    google_application_credentials = EncryptedTextField(
        null=True,
        blank=True,
        help_text=("Service account key (JSON text); empty: the server's own credentials, if the operator allows them"),
    )
    google_project_id = models.TextField(null=True, blank=True)

    class Meta:
        abstract = True


class GCSImportStorage(ProjectStorageMixin, GCSStorageMixin, PresignMixin, ImportStorage):
    pass


class GCSExportStorage(ProjectStorageMixin, GCSStorageMixin, ExportStorage):
    pass


class GCSImportStorageLink(ImportStorageLink):
    storage = models.ForeignKey(GCSImportStorage, on_delete=models.CASCADE, related_name="links")

    class Meta:
        indexes = [models.Index(fields=["storage", "key"], name="gcs_import_link_key")]


class GCSExportStorageLink(ExportStorageLink):
    storage = models.ForeignKey(GCSExportStorage, on_delete=models.CASCADE, related_name="links")
