"""OpenAPI pieces shared by the apps' views (drf-spectacular)."""

from drf_spectacular.utils import OpenApiParameter, inline_serializer
from rest_framework import serializers

PROJECT = OpenApiParameter("project", int, required=True, description="Project id")
RESOLVE_URI = OpenApiParameter(
    "resolve_uri", bool, description="false: task data keeps its storage URIs instead of resolve links"
)
ERROR = inline_serializer("Error", {"detail": serializers.CharField()})
