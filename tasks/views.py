"""Task and annotation API (Label Studio-compatible shapes)."""

from django.db import transaction
from django.db.models import Sum
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response

from core.permissions import organization_filter
from core.schema import ERROR, PROJECT, RESOLVE_URI
from io_storages.resolve import resolver_context
from projects.access import get_user_project
from tasks.models import Annotation, Task
from tasks.serializers import (
    AnnotationSerializer,
    CreatedTaskSerializer,
    LabelStudioTaskSerializer,
    TaskCreateSerializer,
    TaskSerializer,
    TaskWithProjectCreateSerializer,
)


def user_tasks(user):
    return Task.objects.filter(**organization_filter(user, "project__organization"))


def user_annotations(user):
    return Annotation.objects.filter(**organization_filter(user, "project__organization"))


class TaskPagination(PageNumberPagination):
    """Label Studio's task page: `{"total", "total_annotations", "total_predictions", "tasks"}`;
    a page past the end is a 404, as in Label Studio."""

    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 10000

    def get_paginated_response(self, data):
        totals = self.page.paginator.object_list.aggregate(
            annotations=Sum("total_annotations"), predictions=Sum("total_predictions")
        )
        return Response(
            {
                "total": self.page.paginator.count,
                "total_annotations": totals["annotations"] or 0,
                "total_predictions": totals["predictions"] or 0,
                "tasks": data,
            }
        )


def create_task(request, serializer_class, project=None):
    """Create the one task of the request's body (Label Studio's answer: 201 with the task as
    stored). Without `project`, the body names it (`POST /api/tasks/`); a project the user
    may not see is a 404, after the body validated."""
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    if project is None:
        project = get_user_project(request.user, serializer.validated_data["project"])
    task = serializer.save(project=project, user=request.user)
    return Response(CreatedTaskSerializer(task, context={"request": request}).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    get=extend_schema(parameters=[PROJECT, RESOLVE_URI]),
    post=extend_schema(
        request=TaskWithProjectCreateSerializer, responses={201: CreatedTaskSerializer, 400: ERROR, 404: ERROR}
    ),
)
class TaskListAPI(generics.ListAPIView):
    """`GET /api/tasks/?project=<id>`: a project's tasks, paginated; `POST /api/tasks/`: create
    one task in the project its body names."""

    serializer_class = TaskSerializer
    pagination_class = TaskPagination

    def post(self, request):
        return create_task(request, TaskWithProjectCreateSerializer)

    def get_queryset(self):
        project_id = self.request.query_params.get("project")
        if not project_id:
            raise ValidationError({"project": ["This query parameter is required"]})
        if not str(project_id).isdigit():
            raise ValidationError({"project": ["A project id is a number"]})
        self.project = get_user_project(self.request.user, project_id)
        return self.project.tasks.prefetch_related("annotations", "predictions").order_by("inner_id")

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if getattr(self, "project", None) is not None:
            context.update(resolver_context(self.request, self.project.id))
        return context


@extend_schema_view(
    get=extend_schema(parameters=[RESOLVE_URI]),
    put=extend_schema(parameters=[RESOLVE_URI]),
    patch=extend_schema(parameters=[RESOLVE_URI]),
)
class TaskDetailAPI(generics.RetrieveUpdateDestroyAPIView):
    serializer_class = TaskSerializer

    def get_queryset(self):
        return user_tasks(self.request.user).prefetch_related("annotations", "predictions")

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if self.kwargs.get("pk"):
            project_id = self.get_queryset().filter(pk=self.kwargs["pk"]).values_list("project_id", flat=True).first()
            if project_id:
                context.update(resolver_context(self.request, project_id))
        return context


#: the page size of `GET /api/projects/<id>/tasks` without `page_size`, as in Label Studio
PROJECT_TASKS_PAGE_SIZE = 50
#: the most tasks one page holds (also for `page_size=-1`, which in Label Studio means all)
PROJECT_TASKS_MAX_PAGE_SIZE = TaskPagination.max_page_size


def _int_param(request, name, default):
    value = request.query_params.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValidationError({name: [f"A whole number, not {value[:40]!r}"]}) from None


@extend_schema_view(
    get=extend_schema(
        parameters=[
            OpenApiParameter("page", int, description="Page number, from 1 (a page past the end is a 404)"),
            OpenApiParameter(
                "page_size",
                int,
                description=f"Tasks per page (default {PROJECT_TASKS_PAGE_SIZE}, at most "
                f"{PROJECT_TASKS_MAX_PAGE_SIZE}; -1: the most)",
            ),
        ],
        responses={200: LabelStudioTaskSerializer(many=True), 404: ERROR},
    ),
    post=extend_schema(request=TaskCreateSerializer, responses={201: CreatedTaskSerializer, 400: ERROR, 404: ERROR}),
)
class ProjectTaskListAPI(generics.GenericAPIView):
    """Label Studio's `GET /api/projects/<id>/tasks`: a plain JSON list of one page of the
    project's tasks, the most recently updated first, with their data as stored (no resolve
    links). An empty page is a 404, also the first page of a project without tasks, as in
    Label Studio. `POST` creates one task in the project."""

    serializer_class = LabelStudioTaskSerializer
    pagination_class = None

    def get(self, request, pk):
        project = get_user_project(request.user, pk)
        page = _int_param(request, "page", 1)
        size = _int_param(request, "page_size", PROJECT_TASKS_PAGE_SIZE)
        if size == -1 or size > PROJECT_TASKS_MAX_PAGE_SIZE:
            size = PROJECT_TASKS_MAX_PAGE_SIZE
        start = (page - 1) * size
        if page < 1 or size < 1 or start > 2**62:  # no such page (a bigger OFFSET overflows the database)
            raise NotFound()
        # `task.project` is this project without a query: the related manager sets it.
        tasks = list(
            project.tasks.prefetch_related("annotations", "predictions").order_by("-updated_at", "-id")[
                start : start + size
            ]
        )
        if not tasks:
            raise NotFound()
        return Response(self.get_serializer(tasks, many=True).data)

    def post(self, request, pk):
        return create_task(request, TaskCreateSerializer, project=get_user_project(request.user, pk))


class TaskAnnotationsAPI(generics.ListCreateAPIView):
    serializer_class = AnnotationSerializer
    pagination_class = None

    def get_task(self):
        return get_object_or_404(user_tasks(self.request.user).select_related("project"), pk=self.kwargs["pk"])

    def get_queryset(self):
        return self.get_task().annotations.order_by("id")

    def perform_create(self, serializer):
        task = self.get_task()
        with transaction.atomic():
            serializer.save(task=task, project=task.project, completed_by=self.request.user)
            task.update_counters()


class AnnotationDetailAPI(generics.RetrieveUpdateDestroyAPIView):
    serializer_class = AnnotationSerializer

    def get_queryset(self):
        return user_annotations(self.request.user).select_related("task__project")

    def perform_update(self, serializer):
        with transaction.atomic():
            annotation = serializer.save()
            annotation.task.update_counters()

    def perform_destroy(self, instance):
        task = instance.task
        with transaction.atomic():
            instance.delete()
            task.update_counters()
