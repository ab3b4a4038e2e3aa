"""OpenAPI for the storage views, which serve every provider from one class: they find their
model and serializer from the storage type in the URL, and a schema generator has no URL.
So the schema names the type as an enum parameter, and bodies are a oneOf of the providers'
serializers."""

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, PolymorphicProxySerializer, inline_serializer
from rest_framework import serializers

from core.schema import ERROR, PROJECT
from io_storages import registry
from io_storages.serializers import serializer_for

STORAGE_TYPE = OpenApiParameter(
    "storage_type", str, OpenApiParameter.PATH, enum=list(registry.PROVIDERS), description="Storage type"
)
FILEURI = OpenApiParameter(
    "fileuri", str, required=True, description="The file's storage URI in urlsafe base64 (a plain URI works too)"
)
# What the file endpoints (resolve, local files) answer, and the request headers they honour.
FILE_HEADERS = [
    OpenApiParameter(
        "Range", str, OpenApiParameter.HEADER, description="One byte range, e.g. bytes=0-1023, bytes=-500"
    ),
    OpenApiParameter("If-None-Match", str, OpenApiParameter.HEADER, description="ETag of a cached copy"),
]
FILE_RESPONSES = {
    (200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY, description="The file"),
    (206, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY, description="The requested range"),
    304: OpenApiResponse(description="The cached copy (If-None-Match) is current"),
    400: ERROR,
    404: ERROR,
    416: OpenApiResponse(description="The range starts past the end of the file"),
}


def any_storage(export, many=False):
    """A storage of any type: one member per provider."""
    return PolymorphicProxySerializer(
        component_name="ExportStorage" if export else "ImportStorage",
        serializers=[serializer_for(model) for model in registry.all_storage_models(export)],
        resource_type_field_name=None,
        many=many,
    )


class StorageSchema(AutoSchema):
    """Adds the storage type to every operation and `?project=` to listings."""

    def get_operation_id(self):
        # Without it, /api/storages/{storage_type}/ would share "api_storages_list" with /api/storages/.
        return super().get_operation_id().replace("storages", "storages_by_type", 1)

    def get_override_parameters(self):
        parameters = [STORAGE_TYPE, *super().get_override_parameters()]
        if self.method == "GET" and self._is_list_view():
            parameters.append(PROJECT)
        return parameters


# Answers of the storage views that are not a storage.
VALID = inline_serializer("StorageValid", {})
TYPES = inline_serializer("StorageType", {"name": serializers.CharField(), "title": serializers.CharField()}, many=True)
FILES = inline_serializer(
    "StorageFiles",
    {
        "files": inline_serializer(
            "StorageFile",
            {
                "key": serializers.CharField(),
                "last_modified": serializers.DateTimeField(allow_null=True),
                "size": serializers.IntegerField(allow_null=True),
            },
            many=True,
        )
    },
)
FORM = inline_serializer(
    "StorageFormGroup",
    {
        "columnCount": serializers.IntegerField(),
        "fields": inline_serializer(
            "StorageFormField",
            {
                "name": serializers.CharField(),
                "type": serializers.ChoiceField(["text", "password", "toggle", "number"]),
                "label": serializers.CharField(),
                "required": serializers.BooleanField(),
                "help": serializers.CharField(),
                "default": serializers.JSONField(allow_null=True),
            },
            many=True,
        ),
    },
    many=True,
)
