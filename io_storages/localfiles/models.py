"""Local files storages: a directory under LOCAL_FILES_DOCUMENT_ROOT on the server."""

from django.conf import settings
from django.db import models

from io_storages.base_models import ExportStorage, ImportStorage, ProjectStorageMixin, link_models


class LocalFilesMixin(models.Model):
    storage_type = "localfiles"
    url_scheme = "localfiles"
    secret_fields = ()

    path = models.TextField(help_text="Absolute directory under LOCAL_FILES_DOCUMENT_ROOT")

    class Meta:
        abstract = True

    @property
    def prefix(self):
        """Keys are relative to `path`, which the client uses as its root."""
        return ""

    @property
    def location(self):
        return self.path

    def get_client(self):
        from io_storages.localfiles.client import LocalFilesClient

        return LocalFilesClient(self.path, document_root=settings.LOCAL_FILES_DOCUMENT_ROOT)


class LocalFilesImportStorage(ProjectStorageMixin, LocalFilesMixin, ImportStorage):
    pass


class LocalFilesExportStorage(ProjectStorageMixin, LocalFilesMixin, ExportStorage):
    pass


LocalFilesImportStorageLink, LocalFilesExportStorageLink = link_models(
    LocalFilesImportStorage, LocalFilesExportStorage, "local"
)
