"""Local files storages: a directory under LOCAL_FILES_DOCUMENT_ROOT on the server."""

import os

from django.conf import settings
from django.db import models

from io_storages.base_models import (
    ExportStorage,
    ExportStorageLink,
    ImportStorage,
    ImportStorageLink,
    ProjectStorageMixin,
)
from io_storages.client import StorageError
from io_storages.localfiles.client import file_url, resolve_under


class LocalFilesMixin(models.Model):
    # No bucket and no prefix: `path` is the client's root, keys are relative to it.
    path = models.TextField(help_text="Absolute directory under LOCAL_FILES_DOCUMENT_ROOT")

    class Meta:
        abstract = True

    @property
    def location(self):
        return self.path

    def uri_for(self, key):
        return file_url(self.path, settings.LOCAL_FILES_DOCUMENT_ROOT, key)


class LocalFilesImportStorage(ProjectStorageMixin, LocalFilesMixin, ImportStorage):
    pass


class LocalFilesExportStorage(ProjectStorageMixin, LocalFilesMixin, ExportStorage):
    pass


class LocalFilesImportStorageLink(ImportStorageLink):
    storage = models.ForeignKey(LocalFilesImportStorage, on_delete=models.CASCADE, related_name="links")

    class Meta:
        indexes = [models.Index(fields=["storage", "key"], name="local_import_link_key")]


class LocalFilesExportStorageLink(ExportStorageLink):
    storage = models.ForeignKey(LocalFilesExportStorage, on_delete=models.CASCADE, related_name="links")


def storage_for_file(relative, **filters):
    """The import storage (among those matching `filters`) whose directory holds the file
    `relative` (a `?d=` path under LOCAL_FILES_DOCUMENT_ROOT), and its key there; or
    (None, None). One query: the storages whose path is one of the file's directories."""
    root = settings.LOCAL_FILES_DOCUMENT_ROOT
    try:
        path = resolve_under(root, relative)
    except StorageError:
        return None, None
    # Storages may have been saved with a symlinked or an already resolved path.
    lexical = os.path.normpath(os.path.join(root, relative))
    candidates = set(_ancestors(str(path)) + _ancestors(lexical))
    for storage in LocalFilesImportStorage.objects.filter(path__in=candidates, **filters).order_by("id"):
        storage_root = os.path.realpath(storage.path)
        key = os.path.relpath(path, storage_root)
        try:
            resolve_under(storage_root, key)  # refuses keys that leave the storage's folder
        except StorageError:
            continue
        return storage, key.replace(os.sep, "/")
    return None, None


def _ancestors(path):
    """`path`'s directories, nearest first, each with and without a trailing slash."""
    found = []
    current = os.path.dirname(path)
    while True:
        found += [current, current.rstrip("/") + "/"]
        parent = os.path.dirname(current)
        if parent == current:
            return found
        current = parent
