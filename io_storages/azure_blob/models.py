"""Azure Blob Storage import/export storages and their links."""

from django.conf import settings
from django.db import models

from io_storages.base_models import (
    ExportStorage,
    ImportStorage,
    PresignMixin,
    ProjectStorageMixin,
    link_models,
)


class AzureBlobStorageMixin(models.Model):
    storage_type = "azure"
    url_scheme = "azure-blob"
    secret_fields = ("account_key",)

    container = models.TextField(help_text="Blob container name")
    prefix = models.TextField(null=True, blank=True, help_text="Blob name prefix (folder) inside the container")
    account_name = models.TextField(
        null=True, blank=True, help_text="Storage account (default: AZURE_BLOB_ACCOUNT_NAME)"
    )
    account_key = models.TextField(null=True, blank=True, help_text="Account key (default: AZURE_BLOB_ACCOUNT_KEY)")

    class Meta:
        abstract = True

    @property
    def location(self):
        return f"azure-blob://{self.container}/{self.prefix or ''}"

    def get_client(self):
        from io_storages.azure_blob.client import AzureBlobClient

        return AzureBlobClient(
            self.container,
            account_name=self.account_name or settings.AZURE_BLOB_ACCOUNT_NAME,
            account_key=self.account_key or settings.AZURE_BLOB_ACCOUNT_KEY,
            endpoint=settings.AZURE_BLOB_ENDPOINT,
        )


class AzureBlobImportStorage(ProjectStorageMixin, AzureBlobStorageMixin, PresignMixin, ImportStorage):
    pass


class AzureBlobExportStorage(ProjectStorageMixin, AzureBlobStorageMixin, ExportStorage):
    pass


AzureBlobImportStorageLink, AzureBlobExportStorageLink = link_models(
    AzureBlobImportStorage, AzureBlobExportStorage, "azure"
)
