"""Project API (Label Studio-compatible): CRUD, task import and the labeling queue's `next`."""

import time

from django.db.models import Count, Q, Sum
from django.db.models.functions import Coalesce
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.exceptions import NotFound, UnsupportedMediaType, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import JSONParser, PageNumberPagination
from core.schema import ERROR, RESOLVE_URI
from io_storages.resolve import resolver_context
from projects.access import get_user_project, user_projects
from projects.serializers import ProjectSerializer
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


class ProjectImportAPI(APIView):
    """POST a JSON list of tasks (or one task object); all are validated before any is created."""

    # Tasks are JSON: a form body is a 415 (its fields would become task data, lists and all).
    parser_classes = [JSONParser]

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
            raise UnsupportedMediaType(request.content_type, "Send the tasks as JSON (Content-Type: application/json)")
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
                "found_formats": [],
                "data_columns": [],
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
