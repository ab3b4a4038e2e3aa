"""Task and annotation API (Label Studio-compatible shapes)."""

from django.db import transaction
from django.db.models import Sum
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response

from core.permissions import organization_filter
from core.schema import PROJECT, RESOLVE_URI
from io_storages.resolve import resolver_context
from projects.access import get_user_project
from tasks.models import Annotation, Task
from tasks.serializers import AnnotationSerializer, TaskSerializer


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


@extend_schema_view(get=extend_schema(parameters=[PROJECT, RESOLVE_URI]))
class TaskListAPI(generics.ListAPIView):
    serializer_class = TaskSerializer
    pagination_class = TaskPagination

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
