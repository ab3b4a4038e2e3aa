"""Serving storage files to users: the resolve endpoints (`/tasks/<id>/resolve/`,
`/projects/<id>/resolve/`, their `/presign/` aliases) and `/data/local-files/?d=<path>`.

Every route goes the same way: find the storage that serves the file among those the user
may see (one query, which is the access check), then `serve()`: a presigned redirect when the
storage presigns, else the bytes streamed through `io_storages.proxy`, with the client shared
between requests and one ETag scheme.
"""

import mimetypes

from django.conf import settings
from django.http import HttpResponseRedirect
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.views import APIView

from core.api import error_response
from core.permissions import organization_filter
from io_storages.client import StorageError
from io_storages.localfiles.models import storage_for_file
from io_storages.proxy import proxy_response
from io_storages.registry import shared_client
from io_storages.resolve import decode_fileuri, storage_for_uri
from io_storages.schema import ERROR, FILE_HEADERS, FILE_RESPONSES, FILEURI

RESOLVE_SCHEMA = extend_schema(
    parameters=[FILEURI, *FILE_HEADERS],
    responses={
        **FILE_RESPONSES,
        303: OpenApiResponse(description="Redirect to a presigned URL (storages with presign=true)"),
        424: ERROR,
    },
)


def visible_to(user):
    """Filters that keep the storages of the projects `user` may see."""
    return organization_filter(user, "project__organization")


def serve(request, storage, key):
    """The response that hands `key` of `storage` to the user (access already checked)."""
    try:
        client = shared_client(storage)
        if getattr(storage, "presign", False):
            return redirect(storage, client, key)
    except StorageError as e:
        return error_response(424, str(e))
    # The ETag depends on who may read it: the same object seen by another user (other
    # rights) or through another storage is revalidated.
    return proxy_response(request, client, key, f"{request.user.pk}:{storage.project_id}:{storage.pk}")


def redirect(storage, client, key):
    ttl = max(1, storage.presign_ttl or 1) * 60
    url = client.presign(key, ttl, content_type=mimetypes.guess_type(key)[0])
    response = HttpResponseRedirect(url, status=303)
    response["Cache-Control"] = f"no-store, max-age={ttl}"
    return response


class ResolveView(APIView):
    def resolve(self, request, **storage_filters):
        fileuri = request.query_params.get("fileuri")
        if not fileuri:
            return error_response(400, "Pass the file URI in the 'fileuri' query parameter (urlsafe base64)")
        # A task or project of another organization has no storage the user may see, so it
        # is a 404 like an unknown one.
        storage, key = storage_for_uri(decode_fileuri(fileuri), **visible_to(request.user), **storage_filters)
        if storage is None:
            return error_response(404, "No storage that you can see in this project serves this URI")
        return serve(request, storage, key)


class TaskResolveAPI(ResolveView):
    @RESOLVE_SCHEMA
    def get(self, request, pk):
        return self.resolve(request, project__tasks__pk=pk)


class ProjectResolveAPI(ResolveView):
    @RESOLVE_SCHEMA
    def get(self, request, pk):
        return self.resolve(request, project_id=pk)


class LocalFilesAPI(APIView):
    """A file under LOCAL_FILES_DOCUMENT_ROOT, for users who can see a project with a local
    files import storage covering it, while LOCAL_FILES_SERVING_ENABLED. Only storages whose
    directory lies inside their organization's (`<root>/<organization id>/`) serve
    (`storage_for_file`), and the client checks it again on every read."""

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
        storage, key = storage_for_file(relative, **visible_to(request.user))
        if storage is None:
            return error_response(404, "File not found")
        return serve(request, storage, key)
