"""The storage REST API, once for every provider: each view takes the storage type from the
URL (`/api/storages/<type>/...`, `/api/storages/export/<type>/...`) and finds its model and
serializer in the registry."""

from collections.abc import Mapping

from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers
from rest_framework.exceptions import ValidationError
from rest_framework.fields import empty as _EMPTY
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import error_body
from core.permissions import organization_filter
from io_storages import registry
from io_storages.client import StorageError
from io_storages.jobs import check_health, start_sync
from io_storages.schema import FILES, FORM, TYPES, VALID, StorageSchema, any_storage
from io_storages.serializers import serializer_for
from io_storages.sync import matching_objects
from projects.access import get_user_project


def _body(request):
    """The request body as a mapping (JSON object or form): a JSON list or number is a 400."""
    if not isinstance(request.data, Mapping):
        raise ValidationError("The request body must be a JSON object")
    return request.data


def _project_param(request, required=True):
    """The project `?project=<id>` names (404 when the user may not see it, or when the value
    names no project at all, `?project=abc`, as in Label Studio); without the parameter (or
    empty) a 400, or None when it is not `required`."""
    project_id = request.query_params.get("project")
    if project_id is None and not required:
        return None
    if not project_id:
        raise ValidationError({"project": ["Pass the project id: ?project=<id>"]})
    return get_user_project(request.user, project_id)  # `abc` or beyond a bigint: no project


class StorageTypeMixin:
    """Resolves `storage_type` (URL) and `export` (URL conf) into a model and serializer."""

    export = False
    schema = StorageSchema()

    @property
    def model(self):
        storage_type = self.kwargs.get("storage_type")
        if storage_type is None and self.schema_generation:
            storage_type = next(iter(registry.PROVIDERS))  # any type: its queryset types the `id`
        try:
            return registry.storage_model(storage_type, export=self.export)
        except KeyError:
            raise Http404(f"Unknown storage type '{storage_type}'")

    @property
    def schema_generation(self):
        return getattr(self, "swagger_fake_view", False)  # set by drf-spectacular on its views

    def get_serializer_class(self):
        return serializer_for(self.model)

    def get_serializer(self, *args, **kwargs):
        """Also on the APIView-based views, which DRF's OPTIONS answer asks for one."""
        if self.schema_generation:
            return any_storage(self.export)
        kwargs.setdefault("context", {"request": self.request, "view": self})
        return self.get_serializer_class()(*args, **kwargs)

    def get_queryset(self):
        return self.model.objects.filter(**organization_filter(self.request.user, "project__organization"))

    def stored_storage(self, pk):
        return get_object_or_404(self.get_queryset(), pk=pk)


class StorageListAPI(StorageTypeMixin, generics.ListCreateAPIView):
    pagination_class = None

    def get_queryset(self):
        if self.request.method != "GET":
            return super().get_queryset()
        storages = self.model.objects.filter(project=_project_param(self.request)).order_by("id")
        return [check_health(storage) for storage in storages]


class StorageDetailAPI(StorageTypeMixin, generics.RetrieveUpdateDestroyAPIView):
    def get_object(self):
        return check_health(super().get_object())


class StorageSyncAPI(StorageTypeMixin, APIView):
    @extend_schema(request=None)
    def post(self, request, storage_type, pk):
        storage = self.stored_storage(pk)
        if not storage.synchronizable:
            # Label Studio's body is {"message": ...}: ours is the envelope with that key too
            message = f"Storage {storage.pk} is not synchronizable"
            return Response({**error_body(400, message), "message": message}, status=400)
        options = {}
        if self.export:
            only_new = _body(request).get(
                "save_only_new_annotations", request.query_params.get("save_only_new_annotations")
            )
            options["only_new"] = str(only_new).lower() in ("1", "true", "yes")
        storage = start_sync(storage, **options)
        return Response(self.get_serializer_class()(storage, context={"request": request}).data)


class StorageConfigMixin(StorageTypeMixin):
    """Endpoints that take a configuration in the body without saving it; with `id`, the
    stored storage's values fill what the body omits. Its secrets are filled in only while
    the connection settings stay those they were saved with; a body that changes any (host,
    port, endpoint, bucket...) must give them again, or the answer is a 400 naming them
    (`Storage.secrets_to_reenter`, checked by the serializer before it connects)."""

    def unsaved_storage(self, request):
        data = _body(request).copy()
        storage_id = data.get("id")  # a form's last value, as a string
        data.pop("id", None)
        if storage_id in (None, ""):
            instance = None
        elif isinstance(storage_id, (int, str)) and str(storage_id).isdigit():
            instance = self.stored_storage(int(storage_id))
        else:
            raise ValidationError({"id": ["A storage id is a number"]})
        serializer = self.get_serializer_class()(
            instance=instance, data=data, partial=instance is not None, validate_only=True, context={"request": request}
        )
        serializer.is_valid(raise_exception=True)  # checks the connection too
        return serializer.unsaved_storage(serializer.validated_data)


class StorageValidateAPI(StorageConfigMixin, APIView):
    @extend_schema(responses={200: VALID})
    def post(self, request, storage_type):
        self.unsaved_storage(request)
        return Response({})


class StorageFilesAPI(StorageConfigMixin, APIView):
    """Preview: the first `limit` objects a sync would import."""

    @extend_schema(responses=FILES)
    def post(self, request, storage_type):
        try:
            limit = max(1, min(int(_body(request).get("limit", request.query_params.get("limit", 100))), 1000))
        except (TypeError, ValueError):
            raise ValidationError({"limit": ["A number from 1 to 1000"]})
        storage = self.unsaved_storage(request)
        files = []
        try:
            for obj in matching_objects(storage, storage.get_client()):
                files.append({"key": obj.key, "last_modified": obj.last_modified, "size": obj.size})
                if len(files) >= limit:
                    break
        except StorageError as e:
            raise ValidationError(str(e))  # as validate answers a failed connection check
        return Response({"files": files})


class StorageFormAPI(StorageTypeMixin, APIView):
    """Form layout for a UI, in Label Studio's shape: a list of groups `{"columnCount",
    "fields"}`, each field `{type, name, label, required}` plus ours, `help` and `default`.
    The first group names the storage (title, bucket/container, prefix), the second holds the
    secrets, the last every other writable field."""

    @extend_schema(responses=FORM)
    def get(self, request, storage_type):
        serializer = self.get_serializer_class()(context={"request": request})
        secret = set(self.model.secret_fields)
        location = ["title", self.model.bucket_field, self.model.prefix_field]
        groups = {"location": [], "secrets": [], "other": []}
        for name, field in serializer.fields.items():
            if field.read_only or name == "project":
                continue
            group = "location" if name in location else "secrets" if name in secret else "other"
            groups[group].append(
                {
                    "type": "password" if name in secret else _input_type(field),
                    "name": name,
                    "label": (field.label or name.replace("_", " ")).capitalize(),
                    "required": field.required,
                    "help": str(field.help_text or ""),
                    "default": _default(self.model, name, field),
                }
            )
        groups["location"].sort(key=lambda f: location.index(f["name"]))
        layout = [
            {"columnCount": min(len(fields), 3) if key != "other" else 1, "fields": fields}
            for key, fields in groups.items()
            if fields
        ]
        return Response(layout)


def _input_type(field):
    if isinstance(field, serializers.BooleanField):
        return "toggle"
    if isinstance(field, (serializers.IntegerField, serializers.FloatField, serializers.DecimalField)):
        return "number"
    return "text"


def _default(model, name, field):
    """The value a new storage gets when the field is left out: the serializer's default,
    else the model field's (`presign` true, `synchronizable` true, Redis `db` 1...), so a form
    built from the layout starts as a storage created without that field would be."""
    if field.default is not _EMPTY:
        return field.default
    try:
        model_field = model._meta.get_field(name)
    except Exception:  # a serializer-only field
        return None
    if not model_field.has_default() or callable(model_field.default):
        return None
    return model_field.default


class AllStoragesAPI(APIView):
    """Every storage of a project, all types together, each with its `type`; without
    `?project=`, those of every project the user may see (Label Studio answers `[]` there)."""

    export = False

    def get_serializer(self, *args, **kwargs):  # only the schema generator asks
        return any_storage(self.export, many=True)

    @extend_schema(
        parameters=[
            OpenApiParameter("project", int, description="Project id; without it, every project the user may see")
        ]
    )
    def get(self, request):
        project = _project_param(request, required=False)
        if project is None:
            storages = registry.storages(self.export, **organization_filter(request.user, "project__organization"))
        else:
            storages = registry.project_storages(project.pk, export=self.export)
        result = [
            serializer_for(type(storage))(check_health(storage), context={"request": request}).data
            for storage in storages
        ]
        result.sort(key=lambda item: item["created_at"])
        return Response(result)


class StorageTypesAPI(APIView):
    @extend_schema(responses=TYPES)
    def get(self, request):
        return Response([{"name": p.type, "title": p.title} for p in registry.PROVIDERS.values()])
