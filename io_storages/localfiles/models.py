"""Local files storages: a directory of the server, inside the directory its project's
organization owns, `<LOCAL_FILES_DOCUMENT_ROOT>/<organization id>/` (README "Local files").
The rules are enforced by `localfiles.client.client_for()`, through which every check, sync,
export and read goes; `storage_for_file()` applies them to `/data/local-files/` too."""

import os

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.db import models
from django.db.models import F

from io_storages.base_models import (
    ExportStorage,
    ExportStorageLink,
    ImportStorage,
    ImportStorageLink,
    ProjectStorageMixin,
)
from io_storages.client import StorageError
from io_storages.localfiles.client import file_url, organization_root, resolve_under, strictly_inside


class LocalFilesMixin(models.Model):
    # No bucket and no prefix: `path` is the client's root, keys are relative to it.
    # Must lie inside LOCAL_FILES_DOCUMENT_ROOT/<id of the project's organization> (client_for);
    # the help text predates that rule and is kept, to need no migration.
    path = models.TextField(help_text="Absolute directory under LOCAL_FILES_DOCUMENT_ROOT")

    class Meta:
        abstract = True

    @property
    def location(self):
        return self.path

    @property
    def organization_id(self):
        """The organization whose directory this storage may use: its project's (None without
        a project). `storage_for_file()` reads it with the storage, as `_organization_id`."""
        if "_organization_id" in self.__dict__:
            return self.__dict__["_organization_id"]
        try:
            return self.project.organization_id
        except ObjectDoesNotExist:  # no project (validate without one)
            return None

    def connection_settings(self):
        # The organization decides which directory a client may use: a client made (and
        # checked) for one organization is never shared with a storage of another.
        return (*super().connection_settings(), ("organization_id", self.organization_id))

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
    (None, None). One query: the storages whose path is one of the file's directories. A
    storage serves only while its directory, symlinks resolved, lies strictly inside its
    organization's directory (a row saved before that rule, or a link into another
    organization's directory, serves nothing)."""
    root = settings.LOCAL_FILES_DOCUMENT_ROOT
    try:
        path = resolve_under(root, relative)
    except StorageError:
        return None, None
    # Storages may have been saved with a symlinked or an already resolved path.
    lexical = os.path.normpath(os.path.join(root, relative))
    candidates = set(_ancestors(str(path)) + _ancestors(lexical))
    storages = LocalFilesImportStorage.objects.filter(path__in=candidates, **filters)
    for storage in storages.annotate(_organization_id=F("project__organization_id")).order_by("id"):
        storage_root = os.path.realpath(storage.path)
        if not strictly_inside(storage_root, os.path.realpath(organization_root(root, storage.organization_id))):
            continue
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
