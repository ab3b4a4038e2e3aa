"""`/data/local-files/?d=<path relative to LOCAL_FILES_DOCUMENT_ROOT>`: serves a file to users
who can see a project with a local files import storage covering it (Range, ETag, 304)."""

import os

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.views import APIView

from core.api import error_response
from core.permissions import organization_filter
from io_storages.client import StorageError
from io_storages.localfiles.client import LocalFilesClient, resolve_under
from io_storages.localfiles.models import LocalFilesImportStorage
from io_storages.proxy import proxy_response
from io_storages.schema import FILE_HEADERS, FILE_RESPONSES


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


class LocalFilesAPI(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("d", str, required=True, description="The file's path under LOCAL_FILES_DOCUMENT_ROOT"),
            *FILE_HEADERS,
        ],
        responses=FILE_RESPONSES,
    )
    def get(self, request):
        if not settings.LOCAL_FILES_SERVING_ENABLED:
            return error_response(404, "Serving local files is disabled (LOCAL_FILES_SERVING_ENABLED)")
        relative = request.query_params.get("d")
        if not relative:
            return error_response(400, "Pass the file path in the 'd' query parameter")
        root = settings.LOCAL_FILES_DOCUMENT_ROOT
        try:
            path = resolve_under(root, relative)
        except StorageError:
            return error_response(404, "File not found")
        # Storages may have been saved with a symlinked or an already resolved path.
        lexical = os.path.normpath(os.path.join(root, relative))
        candidates = set(_ancestors(str(path)) + _ancestors(lexical))
        storages = LocalFilesImportStorage.objects.filter(
            path__in=candidates, **organization_filter(request.user, "project__organization")
        ).order_by("id")
        for storage in storages:
            client = LocalFilesClient(storage.path, document_root=root)
            storage_root = os.path.realpath(storage.path)
            key = os.path.relpath(path, storage_root)
            try:
                resolve_under(storage_root, key)  # refuses keys that leave the storage's folder
            except StorageError:
                continue
            return proxy_response(
                request, client, key.replace(os.sep, "/"), f"{request.user.pk}:local:{storage.project_id}"
            )
        return error_response(404, "File not found")
