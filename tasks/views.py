"""Task and annotation API (Label Studio-compatible shapes)."""

from django.db import transaction
from django.db.models import F, Sum
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response

from core.api import error_body
from core.permissions import organization_filter
from core.schema import ERROR, PROJECT, RESOLVE_URI
from io_storages.resolve import resolver_context
from projects.access import get_user_project, get_user_view
from tasks.models import Annotation, Task
from tasks.serializers import (
    AnnotationSerializer,
    CreatedTaskSerializer,
    DataManagerTaskSerializer,
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


#: data manager ordering keys ("tasks:<column>", "-" for descending) applied to a view's task
#: list; any other column is ignored (docs/decisions.md)
VIEW_ORDERING = {
    f"tasks:{name}": name
    for name in (
        "id",
        "inner_id",
        "created_at",
        "updated_at",
        "is_labeled",
        "total_annotations",
        "cancelled_annotations",
        "total_predictions",
    )
}


def _storage_filename_expression():
    keys = [F(f"{accessor}__key") for accessor in Task.import_link_accessors()]
    return Coalesce(*keys) if len(keys) > 1 else keys[0]


def view_ordering(view_data):
    """The ORDER BY of a view's `ordering` (the supported columns only), then inner_id."""
    ordering = view_data.get("ordering") if isinstance(view_data, dict) else None
    expressions = []
    for item in ordering if isinstance(ordering, list) else []:
        if not isinstance(item, str):
            continue
        descending = item.startswith("-")
        name = item.lstrip("-")
        if name == "tasks:storage_filename" and Task.import_link_accessors():
            expression = _storage_filename_expression()
        elif name in VIEW_ORDERING:
            expression = F(VIEW_ORDERING[name])
        else:
            continue
        expressions.append(expression.desc(nulls_last=True) if descending else expression.asc(nulls_last=True))
    return [*expressions, "inner_id"]


VIEW = OpenApiParameter(
    "view",
    int,
    description="A data manager view (`POST /api/dm/views`): its project's tasks, as the data manager lists them",
)


@extend_schema_view(
    get=extend_schema(parameters=[PROJECT, VIEW, RESOLVE_URI]),
    post=extend_schema(
        request=TaskWithProjectCreateSerializer, responses={201: CreatedTaskSerializer, 400: ERROR, 404: ERROR}
    ),
)
class TaskListAPI(generics.ListAPIView):
    """`GET /api/tasks/?project=<id>`: a project's tasks, paginated; `GET /api/tasks/?view=<id>`:
    the tasks of a data manager view's project in Label Studio's data manager shape (with
    `storage_filename`), ordered as the view says where supported; `POST /api/tasks/`: create
    one task in the project its body names."""

    serializer_class = TaskSerializer
    pagination_class = TaskPagination

    def post(self, request):
        return create_task(request, TaskWithProjectCreateSerializer)

    def get_serializer_class(self):
        if getattr(self, "view_obj", None) is not None:
            return DataManagerTaskSerializer
        return super().get_serializer_class()

    def get_queryset(self):
        params = self.request.query_params
        project_id, view_id = params.get("project"), params.get("view")
        if view_id:
            if not str(view_id).isdigit():
                raise ValidationError({"view": ["A view id is a number"]})
            self.view_obj = get_user_view(self.request.user, view_id)
            if project_id and str(project_id) != str(self.view_obj.project_id):
                raise ValidationError({"detail": "Project and View mismatch"})
            self.project = self.view_obj.project
            return (
                self.project.tasks.select_related(*Task.import_link_accessors())
                .prefetch_related("annotations", "predictions")
                .order_by(*view_ordering(self.view_obj.data))
            )
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


def _selected_task_ids(project, body, view):
    """The tasks a data manager action applies to: `selectedItems` of the body (else of the
    view), `{"all": true, "excluded": [ids]}` (the default: every task) or
    `{"all": false, "included": [ids]}`. Filters are not applied here: an action on all tasks
    with filters is refused rather than run on more tasks than the user sees."""
    selected = body.get("selectedItems")
    if selected is None and view is not None:
        selected = view.data.get("selectedItems")
    if selected is None:
        selected = {"all": True, "excluded": []}
    if not isinstance(selected, dict) or not isinstance(selected.get("all", True), bool):
        raise ValidationError(
            {"selectedItems": ['A JSON object: {"all": true|false, "excluded"|"included": [task ids]}']}
        )
    key = "excluded" if selected.get("all", True) else "included"
    ids = selected.get(key) or []
    if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise ValidationError({"selectedItems": [f"'{key}' must be a list of task ids"]})
    tasks = project.tasks.all()
    if key == "included":
        return tasks.filter(id__in=ids)
    filters = body.get("filters") if "filters" in body else (view.data.get("filters") if view is not None else None)
    if isinstance(filters, dict) and filters.get("items"):
        raise ValidationError(
            {"filters": ["Filters are not supported by actions here: select the tasks (selectedItems.included)"]}
        )
    return tasks.exclude(id__in=ids)


def delete_tasks_annotations(request, project, tasks):
    """Label Studio's `delete_tasks_annotations`: the annotations of `tasks` (of one annotator
    with `"annotator": <user id>`), deleted through the ORM (auto-export removal signals fire),
    then the tasks' counters."""
    body = request.data if isinstance(request.data, dict) else {}
    annotations = Annotation.objects.filter(task__in=tasks)
    annotator = body.get("annotator")
    if annotator not in (None, ""):
        if not str(annotator).isdigit():
            raise ValidationError({"annotator": ["A user id is a number"]})
        annotations = annotations.filter(completed_by_id=int(annotator))
    with transaction.atomic():
        task_ids = set(annotations.values_list("task_id", flat=True))
        count = annotations.count()
        annotations.delete()
        for task in Task.objects.filter(id__in=task_ids).select_related("project"):
            task.update_counters()
        Task.objects.filter(id__in=task_ids).update(updated_at=timezone.now())
    return {"processed_items": count, "detail": f"Deleted {count} annotations"}


#: data manager actions (`POST /api/dm/actions?id=<id>&project=<id>`) this service performs
DATA_MANAGER_ACTIONS = {"delete_tasks_annotations": delete_tasks_annotations}


@extend_schema_view(
    post=extend_schema(
        parameters=[
            OpenApiParameter("id", str, required=True, description=f"The action: {', '.join(DATA_MANAGER_ACTIONS)}"),
            OpenApiParameter("project", int, required=True),
            OpenApiParameter("view", int, description="A view of the project, whose selectedItems apply"),
        ],
        request=OpenApiTypes.OBJECT,
        responses={200: OpenApiTypes.OBJECT, 400: ERROR, 404: ERROR, 422: ERROR},
    )
)
class DataManagerActionAPI(generics.GenericAPIView):
    """Label Studio's data manager actions on a project's selected tasks. Only
    `delete_tasks_annotations` is implemented; another id is a 400, no id a 422 (as in Label
    Studio)."""

    def post(self, request):
        params = request.query_params
        project_id = params.get("project")
        if not project_id or not str(project_id).isdigit():
            raise ValidationError({"project": ["A project id is a number"]})
        project = get_user_project(request.user, project_id)
        action_id = params.get("id")
        if action_id is None:
            return Response(error_body(422, 'No action id "None", use ?id=<action-id>'), status=422)
        action = DATA_MANAGER_ACTIONS.get(action_id)
        if action is None:
            raise ValidationError({"detail": f"Can't find '{action_id[:100]}' in registered actions"})
        body = request.data if isinstance(request.data, dict) else {}
        view = None
        view_id = params.get("view") or body.get("view")
        if view_id:
            if not str(view_id).isdigit():
                raise ValidationError({"view": ["A view id is a number"]})
            view = get_user_view(request.user, view_id)
            if view.project_id != project.id:
                raise ValidationError({"detail": "Project and View mismatch"})
        return Response(action(request, project, _selected_task_ids(project, body, view)))
