"""Resolve endpoints (`/tasks/<id>/resolve/`, `/projects/<id>/resolve/`, `/presign/` aliases):
check access, find the storage that serves the URI, then redirect to a presigned URL or
stream the bytes through the service."""

import mimetypes

from django.http import HttpResponseRedirect
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.views import APIView

from core.api import error_response
from core.permissions import organization_filter
from io_storages.client import StorageError
from io_storages.proxy import proxy_response
from io_storages.resolve import decode_fileuri, shared_client, storage_for_uri
from io_storages.schema import ERROR, FILE_HEADERS, FILE_RESPONSES, FILEURI

RESOLVE_SCHEMA = extend_schema(
    parameters=[FILEURI, *FILE_HEADERS],
    responses={
        **FILE_RESPONSES,
        303: OpenApiResponse(description="Redirect to a presigned URL (storages with presign=true)"),
        424: ERROR,
    },
)


class ResolveMixin:
    def resolve(self, request, **storage_filters):
        fileuri = request.query_params.get("fileuri")
        if not fileuri:
            return error_response(400, "Pass the file URI in the 'fileuri' query parameter (urlsafe base64)")
        # One query finds the storage and checks access: a task or project of another
        # organization has no storage the user may see, so it is a 404 like an unknown one.
        access = organization_filter(request.user, "project__organization")
        storage, key = storage_for_uri(decode_fileuri(fileuri), **access, **storage_filters)
        if storage is None:
            return error_response(404, "No storage that you can see in this project serves this URI")
        try:
            client = shared_client(storage)
            if getattr(storage, "presign", False):
                return self.redirect(storage, client, key)
        except StorageError as e:
            return error_response(424, str(e))
        # The ETag depends on who may read it: a user and project pair.
        return proxy_response(request, client, key, f"{request.user.pk}:{storage.project_id}:{storage.pk}")

    @staticmethod
    def redirect(storage, client, key):
        ttl = max(1, storage.presign_ttl or 1) * 60
        url = client.presign(key, ttl, content_type=mimetypes.guess_type(key)[0])
        response = HttpResponseRedirect(url, status=303)
        response["Cache-Control"] = f"no-store, max-age={ttl}"
        return response


class TaskResolveAPI(ResolveMixin, APIView):
    @RESOLVE_SCHEMA
    def get(self, request, pk):
        return self.resolve(request, project__tasks__pk=pk)


class ProjectResolveAPI(ResolveMixin, APIView):
    @RESOLVE_SCHEMA
    def get(self, request, pk):
        return self.resolve(request, project_id=pk)
