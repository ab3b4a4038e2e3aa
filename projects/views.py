"""Project API (Label Studio-compatible): CRUD, task import and the labeling queue's `next`."""

import json
import os
import time

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db.models import Count, Q, Sum
from django.db.models.functions import Coalesce
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.exceptions import NotFound, UnsupportedMediaType, ValidationError
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import JSONParser, PageNumberPagination, is_id
from core.schema import ERROR, RESOLVE_URI
from io_storages.resolve import resolver_context
from projects.access import get_user_project, user_projects
from projects.models import View
from projects.serializers import ProjectSerializer, ViewSerializer
from tasks.importing import TaskFormatError, create_tasks, parse_task
from tasks.serializers import TaskSerializer


class ProjectMixin:
    serializer_class = ProjectSerializer

    def get_queryset(self):
        return (
            user_projects(self.request.user)
            .select_related("created_by")
            .annotate(
                task_number=Count("tasks", distinct=True),
                num_tasks_with_annotations=Count("tasks", filter=Q(tasks__total_annotations__gt=0), distinct=True),
                # A sum over no tasks is NULL: a project without tasks has 0 of both.
                total_annotations_number=Coalesce(Sum("tasks__total_annotations"), 0),
                total_predictions_number=Coalesce(Sum("tasks__total_predictions"), 0),
            )
            .order_by("-id")
        )

    def _reload_with_counts(self, serializer):
        serializer.instance = self.get_queryset().get(pk=serializer.instance.pk)

    def perform_create(self, serializer):
        serializer.save()
        self._reload_with_counts(serializer)

    def perform_update(self, serializer):
        serializer.save()
        self._reload_with_counts(serializer)


class ProjectListAPI(ProjectMixin, generics.ListCreateAPIView):
    pagination_class = PageNumberPagination


class ProjectDetailAPI(ProjectMixin, generics.RetrieveUpdateDestroyAPIView):
    pass


#: file types `POST /api/projects/<id>/import` reads from an upload, by extension
IMPORT_FILE_TYPES = (".json", ".jsonl", ".txt")


def _refuse_constant(name):
    raise ValueError(f"{name} is not JSON")


def _file_tasks(upload, data_key):
    """The task values of one uploaded file (json: a list of tasks or one task; jsonl: one
    task a line; txt: one task a line, `{<data_key>: <line>}`); ValidationError if unreadable."""
    name = upload.name or "file"
    extension = os.path.splitext(name.lower())[1]
    if extension not in IMPORT_FILE_TYPES:
        raise ValidationError(
            {"file": [f"{name[:100]}: unsupported file type (one of {', '.join(IMPORT_FILE_TYPES)})"]}
        )
    try:
        text = b"".join(upload.chunks()).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationError({"file": [f"{name[:100]}: not UTF-8 text"]}) from None
    if extension == ".txt":
        return [{data_key: line.strip()} for line in text.splitlines() if line.strip()]
    try:
        if extension == ".jsonl":
            return [json.loads(line, parse_constant=_refuse_constant) for line in text.splitlines() if line.strip()]
        value = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise ValidationError({"file": [f"{name[:100]}: nested too deeply"]}) from None
    except ValueError as e:
        raise ValidationError({"file": [f"{name[:100]}: not valid JSON ({str(e)[:200]})"]}) from None
    return value if isinstance(value, list) else [value]


class ProjectImportAPI(APIView):
    """POST a JSON list of tasks (or one task object), or upload files (multipart: json, jsonl,
    txt); all tasks are validated before any is created."""

    # Tasks are JSON or uploaded files: a form body without files is a 415 (its fields would
    # become task data, lists and all).
    parser_classes = [JSONParser, MultiPartParser]

    def _uploaded_tasks(self, request, project):
        files = [f for name in request.FILES for f in request.FILES.getlist(name)]
        if not files:
            raise UnsupportedMediaType(
                request.content_type, "Send the tasks as JSON (Content-Type: application/json) or upload task files"
            )
        if sum(f.size or 0 for f in files) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            raise RequestDataTooBig("uploaded files over DATA_UPLOAD_MAX_MEMORY_SIZE")
        key = project.data_key
        return [task for upload in files for task in _file_tasks(upload, key)], files

    @extend_schema(
        request=OpenApiTypes.OBJECT,  # [{"data": {...}, "annotations": [...], ...}] or flat data objects
        responses={
            201: inline_serializer(
                "ImportResult",
                {
                    "task_count": serializers.IntegerField(),
                    "annotation_count": serializers.IntegerField(),
                    "prediction_count": serializers.IntegerField(),
                    "duration": serializers.FloatField(),
                    "file_upload_ids": serializers.ListField(child=serializers.IntegerField()),
                    "could_be_tasks_list": serializers.BooleanField(),
                    "found_formats": serializers.ListField(child=serializers.CharField()),
                    "data_columns": serializers.ListField(child=serializers.CharField()),
                },
            ),
            400: OpenApiTypes.OBJECT,
        },
    )
    def post(self, request, pk):
        project = get_user_project(request.user, pk)
        started = time.monotonic()
        try:
            payload = request.data
        except UnsupportedMediaType:
            raise UnsupportedMediaType(
                request.content_type, "Send the tasks as JSON (Content-Type: application/json) or upload task files"
            )
        uploaded = []
        if request.content_type.startswith("multipart/"):
            payload, uploaded = self._uploaded_tasks(request, project)
            if not payload:
                raise ValidationError({"detail": "The uploaded files hold no tasks"})
        if isinstance(payload, dict):
            payload = [payload]
        if not isinstance(payload, list) or not payload:
            raise ValidationError({"detail": "Send a non-empty JSON list of tasks"})
        parsed, errors = [], {}
        for i, value in enumerate(payload):
            try:
                parsed.append(parse_task(value))
            except TaskFormatError as e:
                errors[f"task #{i}"] = [str(e)]
        if errors:
            raise ValidationError(errors)
        create_tasks(project, parsed, user=request.user)
        return Response(
            {
                "task_count": len(parsed),
                "annotation_count": sum(len(p.annotations) for p in parsed),
                "prediction_count": sum(len(p.predictions) for p in parsed),
                "duration": round(time.monotonic() - started, 3),
                "file_upload_ids": [],
                "could_be_tasks_list": False,
                "found_formats": sorted({os.path.splitext(f.name.lower())[1] for f in uploaded}),
                "data_columns": sorted({k for p in parsed for k in p.data}) if uploaded else [],
            },
            status=status.HTTP_201_CREATED,
        )


class ProjectNextTaskAPI(APIView):
    """The first task (by inner_id) that has no annotation yet; 404 when none is left."""

    @extend_schema(parameters=[RESOLVE_URI], responses={200: TaskSerializer, 404: ERROR})
    def get(self, request, pk):
        project = get_user_project(request.user, pk)
        task = project.tasks.filter(total_annotations=0, cancelled_annotations=0).order_by("inner_id").first()
        if task is None:
            raise NotFound("No more tasks to label in this project")
        context = {"request": request, **resolver_context(request, project.id)}
        return Response(TaskSerializer(task, context=context).data)


def _project_id(value):
    """A project id from a query parameter or a body field (Label Studio sends both "3" and 3)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip().isdigit():
        raise ValidationError({"project": ["A project id is a number"]})
    return int(value)


class DataManagerViewMixin:
    serializer_class = ViewSerializer
    pagination_class = None

    def get_queryset(self):
        return View.objects.filter(project__in=user_projects(self.request.user)).order_by("order", "id")


@extend_schema_view(
    get=extend_schema(parameters=[OpenApiParameter("project", int, description="Only this project's views")]),
    post=extend_schema(parameters=[OpenApiParameter("project", int, description="The view's project")]),
)
class DataManagerViewListAPI(DataManagerViewMixin, generics.ListCreateAPIView):
    """Label Studio's data manager views (tabs): `GET /api/dm/views?project=<id>` lists them,
    `POST /api/dm/views?project=<id>` (or `{"project": <id>}` in the body) creates one."""

    def get_queryset(self):
        queryset = super().get_queryset()
        project = self.request.query_params.get("project")
        if project is not None:
            project_id = _project_id(project)  # beyond a bigint: no project, so no view
            queryset = queryset.filter(project_id=project_id) if is_id(project_id) else queryset.none()
        return queryset

    def perform_create(self, serializer):
        body = self.request.data if isinstance(self.request.data, dict) else {}
        value = body.get("project", self.request.query_params.get("project"))
        if value is None:
            raise ValidationError({"project": ["This field is required"]})
        project = get_user_project(self.request.user, _project_id(value))
        serializer.save(project=project, user=self.request.user)


class DataManagerViewDetailAPI(DataManagerViewMixin, generics.RetrieveUpdateDestroyAPIView):
    pass
