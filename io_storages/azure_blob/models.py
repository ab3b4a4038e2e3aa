"""Azure Blob Storage import/export storages and their links."""

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


class AzureBlobStorageMixin(models.Model):
    bucket_field = "container"
    prefix_field = "prefix"
    secret_fields = ("account_key",)
    address_fields = ("account_name",)  # the endpoint's host is made from it

    container = models.TextField(help_text="Blob container name")
    prefix = models.TextField(null=True, blank=True, help_text="Blob name prefix (folder) inside the container")
    account_name = models.TextField(
        null=True,
        blank=True,
        help_text="Storage account (empty: AZURE_BLOB_ACCOUNT_NAME, if the operator allows server credentials)",
    )
    account_key = EncryptedTextField(
        null=True,
        blank=True,
        help_text="Account key (empty: AZURE_BLOB_ACCOUNT_KEY, if the operator allows server credentials)",
    )

    class Meta:
        abstract = True


class AzureBlobImportStorage(ProjectStorageMixin, AzureBlobStorageMixin, PresignMixin, ImportStorage):
    pass


class AzureBlobExportStorage(ProjectStorageMixin, AzureBlobStorageMixin, ExportStorage):
    pass


class AzureBlobImportStorageLink(ImportStorageLink):
    storage = models.ForeignKey(AzureBlobImportStorage, on_delete=models.CASCADE, related_name="links")

    class Meta:
        indexes = [models.Index(fields=["storage", "key"], name="azure_import_link_key")]


class AzureBlobExportStorageLink(ExportStorageLink):
    storage = models.ForeignKey(AzureBlobExportStorage, on_delete=models.CASCADE, related_name="links")
