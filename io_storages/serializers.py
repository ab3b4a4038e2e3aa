"""One serializer per storage model, generated from the model: provider fields are declared
once (on the model), secrets are write-only, and saving checks the connection."""

import copy

from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.fields import empty

from core.permissions import organization_filter
from io_storages.base_models import STATUS_FIELDS
from io_storages.client import StorageError
from io_storages.events import check_event_queue
from io_storages.sync import compile_regex_filter
from projects.models import Project


class StorageSerializer(serializers.ModelSerializer):
    type = serializers.SerializerMethodField(help_text="Storage type: s3, gcs, azure, redis or localfiles")

    def __init__(self, *args, validate_only=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.validate_only = validate_only
        if validate_only:  # checking a configuration does not need it attached to a project
            self.fields["project"].required = False

    def get_fields(self):
        fields = super().get_fields()
        for field in fields.values():
            if isinstance(field, serializers.BooleanField) and not field.required:
                # DRF reads a boolean missing from a form body (multipart, urlencoded) as false;
                # missing means "not given" there too: the model's default (presign,
                # synchronizable: true) on create, the stored value on update
                field.default_empty_html = empty
        return fields

    def get_type(self, obj) -> str:
        return self.Meta.model.storage_type

    def validate_project(self, project):
        user = self.context["request"].user
        if not Project.objects.filter(pk=project.pk, **organization_filter(user)).exists():
            raise NotFound("Project not found")
        return project

    def validate_regex_filter(self, value):
        try:
            compile_regex_filter(value)  # what the sync runs: RE2, in linear time
        except ValueError as e:
            raise serializers.ValidationError(str(e))
        return value

    def validate(self, attrs):
        storage = self.unsaved_storage(attrs)
        if self.instance is not None:  # before connecting: stored secrets must not reach a new address
            moved, missing = self.instance.secrets_to_reenter(storage, given=attrs)
            if missing:
                raise serializers.ValidationError({name: [reenter_message(moved)] for name in missing})
        queue = getattr(storage, "event_queue", "")  # import storages: notifications instead of listings
        if queue:
            self.check_event_queue(storage, connect=False)  # parsed and SSRF-checked before connecting
        try:
            storage.validate_connection()
        except StorageError as e:
            raise serializers.ValidationError(str(e))
        if queue:
            self.check_event_queue(storage, connect=True)
        return attrs

    @staticmethod
    def check_event_queue(storage, connect):
        try:
            check_event_queue(storage, connect=connect)
        except StorageError as e:
            raise serializers.ValidationError({"event_queue": [str(e)]})

    def unsaved_storage(self, attrs):
        """The storage as it would be saved (stored values overlaid with `attrs`)."""
        storage = copy.copy(self.instance) if self.instance else self.Meta.model()
        for name, value in attrs.items():
            setattr(storage, name, value)
        return storage


def reenter_message(moved):
    return (
        f"Re-enter this secret: the connection settings changed ({', '.join(moved)}), and a stored "
        "secret is only used with the settings it was saved with"
    )


def serializer_for(model):
    """The API serializer of a storage model (cached on the model)."""
    if "_api_serializer" not in model.__dict__:
        meta = type(
            "Meta",
            (),
            {
                "model": model,
                "fields": "__all__",
                "read_only_fields": list(STATUS_FIELDS),
                "extra_kwargs": {name: {"write_only": True} for name in model.secret_fields},
            },
        )
        model._api_serializer = type(f"{model.__name__}Serializer", (StorageSerializer,), {"Meta": meta})
    return model._api_serializer
