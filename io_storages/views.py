"""Resolve endpoints (`/tasks/<id>/resolve/`, `/projects/<id>/resolve/`, `/presign/` aliases):
check access, find the storage that serves the URI, then redirect to a presigned URL or
stream the bytes through the service."""

import mimetypes

from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from rest_framework.views import APIView

from io_storages.client import StorageError
from io_storages.proxy import error_response, proxy_response
from io_storages.resolve import decode_fileuri, shared_client, storage_for_uri
from projects.views import user_projects
from tasks.views import user_tasks


class ResolveMixin:
    def resolve(self, request, project_id):
        fileuri = request.query_params.get("fileuri")
        if not fileuri:
            return error_response(400, "Pass the file URI in the 'fileuri' query parameter (urlsafe base64)")
        uri = decode_fileuri(fileuri)
        storage, key = storage_for_uri(project_id, uri)
        if storage is None:
            return error_response(404, "No storage of this project serves this URI")
        try:
            client = shared_client(storage)
            if getattr(storage, "presign", False):
                return self.redirect(storage, client, key)
        except StorageError as e:
            return error_response(424, str(e))
        # The ETag depends on who may read it: a user and project pair.
        return proxy_response(request, client, key, f"{request.user.pk}:{project_id}:{storage.pk}")

    @staticmethod
    def redirect(storage, client, key):
        ttl = max(1, storage.presign_ttl or 1) * 60
        url = client.presign(key, ttl, content_type=mimetypes.guess_type(key)[0])
        response = HttpResponseRedirect(url, status=303)
        response["Cache-Control"] = f"no-store, max-age={ttl}"
        return response


class TaskResolveAPI(ResolveMixin, APIView):
    def get(self, request, pk):
        # Only the project id is needed: loading the task would also decode its (maybe large) data.
        project_id = get_object_or_404(user_tasks(request.user).values_list("project_id", flat=True), pk=pk)
        return self.resolve(request, project_id)


class ProjectResolveAPI(ResolveMixin, APIView):
    def get(self, request, pk):
        project_id = get_object_or_404(user_projects(request.user).values_list("id", flat=True), pk=pk)
        return self.resolve(request, project_id)
