"""Google Cloud Storage import/export storages and their links."""

from django.db import models

from io_storages.base_models import (
    ExportStorage,
    ImportStorage,
    PresignMixin,
    ProjectStorageMixin,
    link_models,
)


class GCSStorageMixin(models.Model):
    storage_type = "gcs"
    url_scheme = "gs"
    secret_fields = ("google_application_credentials",)

    bucket = models.TextField(help_text="GCS bucket name")
    prefix = models.TextField(null=True, blank=True, help_text="Key prefix (folder) inside the bucket")
    google_application_credentials = models.TextField(
        null=True, blank=True, help_text="Service account key (JSON text); empty: the environment's default credentials"
    )
    google_project_id = models.TextField(null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def location(self):
        return f"gs://{self.bucket}/{self.prefix or ''}"

    def get_client(self):
        from io_storages.gcs.client import GCSClient

        return GCSClient(
            self.bucket, credentials_json=self.google_application_credentials, project_id=self.google_project_id
        )


class GCSImportStorage(ProjectStorageMixin, GCSStorageMixin, PresignMixin, ImportStorage):
    pass


class GCSExportStorage(ProjectStorageMixin, GCSStorageMixin, ExportStorage):
    pass


GCSImportStorageLink, GCSExportStorageLink = link_models(GCSImportStorage, GCSExportStorage, "gcs")
