"""OpenAPI pieces shared by the apps' views (drf-spectacular)."""

from drf_spectacular.utils import OpenApiParameter, inline_serializer
from rest_framework import serializers

PROJECT = OpenApiParameter("project", int, required=True, description="Project id")
RESOLVE_URI = OpenApiParameter(
    "resolve_uri", bool, description="false: task data keeps its storage URIs instead of resolve links"
)


def _envelope(validation_errors_required):
    """The fields of Label Studio's error envelope (core.api.error_body)."""
    return {
        "id": serializers.UUIDField(help_text="The error's id: the server log has it (a 500's traceback with it)"),
        "status_code": serializers.IntegerField(help_text="The HTTP status"),
        "version": serializers.CharField(help_text="The service's version"),
        "detail": serializers.CharField(help_text='The message; "Validation error" when validation_errors holds them'),
        "exc_info": serializers.CharField(allow_null=True, help_text="Always null: tracebacks stay in the server log"),
        "validation_errors": serializers.DictField(
            child=serializers.JSONField(),
            required=validation_errors_required,
            help_text="Validation errors only (400): the messages by field, `non_field_errors` for the body as a "
            "whole; a list of messages, or a nested field's own errors, as Django REST framework gives them",
        ),
    }


# Every JSON error answer of the service; validation errors (400) add `validation_errors`.
ERROR = inline_serializer("Error", _envelope(validation_errors_required=False))
# A 400 of a body or parameters that do not validate.
VALIDATION_ERROR = inline_serializer("ValidationError", _envelope(validation_errors_required=True))
