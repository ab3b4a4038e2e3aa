"""The webhook serializer: Label Studio's fields (`id, organization, project, url, send_payload,
send_for_all_actions, headers, is_active, actions, created_at, updated_at`) plus `secret`
(write-only) and `secret_set`. The URL is checked against SSRF when saved; the project is
one of the user's (404 otherwise) and cannot change afterwards, as in Label Studio."""

import re

from django.http import Http404
from rest_framework import serializers
from rest_framework.exceptions import NotFound

from io_storages import ssrf
from io_storages.webhooks.delivery import RESERVED_HEADERS
from io_storages.webhooks.models import ACTIONS, Webhook
from projects.access import get_user_project

#: Label Studio's rule for header names (its HEADERS_SCHEMA), and its limit of 10 headers
HEADER_NAME = re.compile(r"[a-zA-Z0-9_-]+")
MAX_HEADERS = 10
MAX_HEADER_VALUE = 4096
MAX_SECRET = 1024


class _Text(serializers.CharField):
    """A string as given: a number or boolean is refused, not turned into text."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class WebhookSerializer(serializers.ModelSerializer):
    organization = serializers.IntegerField(
        source="project.organization_id", read_only=True, help_text="Organization of the project"
    )
    project = serializers.IntegerField(
        source="project_id", help_text="Project id; cannot change once the webhook exists"
    )
    url = _Text(max_length=2048, help_text=Webhook._meta.get_field("url").help_text)
    secret = _Text(
        write_only=True,
        required=False,
        allow_blank=True,
        allow_null=True,
        max_length=MAX_SECRET,
        trim_whitespace=False,
        help_text="Key of the X-Signature-256 HMAC-SHA256 of each body; never returned. Omitted in a PATCH: "
        "kept; empty or null: removed (bodies are then unsigned)",
    )
    secret_set = serializers.SerializerMethodField(help_text="Whether the webhook has a secret (bodies are signed)")
    headers = serializers.DictField(
        child=_Text(allow_blank=True, max_length=MAX_HEADER_VALUE, trim_whitespace=False),
        required=False,
        help_text=f"Extra request headers, {{name: value}}, at most {MAX_HEADERS}",
    )
    actions = serializers.ListField(
        child=serializers.ChoiceField(choices=sorted(ACTIONS)),
        required=False,
        help_text="Actions sent when send_for_all_actions is false",
    )

    class Meta:
        model = Webhook
        fields = (
            "id",
            "organization",
            "project",
            "url",
            "secret",
            "secret_set",
            "send_payload",
            "send_for_all_actions",
            "headers",
            "is_active",
            "actions",
            "created_at",
            "updated_at",
        )
        read_only_fields = ("id", "created_at", "updated_at")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance is not None and not isinstance(self.instance, (list, tuple)) and "project" in self.fields:
            self.fields["project"].read_only = True  # Label Studio's WebhookSerializerForUpdate

    def get_secret_set(self, webhook) -> bool:
        return bool(webhook.secret)

    def validate_project(self, value):
        """A project of another organization is not found (404), as for storages."""
        try:
            return get_user_project(self.context["request"].user, value).pk
        except Http404:
            raise NotFound("Project not found") from None

    def validate_url(self, value):
        """Stored as typed once it passes the SSRF policy (strict parse, public addresses or a
        trusted endpoint); checked again before each delivery."""
        try:
            ssrf.check_url(value, what="url")
        except ssrf.SSRFError as e:
            raise serializers.ValidationError(str(e)) from None
        return value

    def validate_headers(self, value):
        problem = headers_problem(value)
        if problem:
            raise serializers.ValidationError(problem)
        return value

    def validate_actions(self, value):
        return sorted(set(value))

    def validate_secret(self, value):
        return value or ""


def headers_problem(headers):
    """What is wrong with a webhook's extra `headers`, or None (the API's and the admin's rule)."""
    if not isinstance(headers, dict):
        return "A JSON object of header names and values"
    if len(headers) > MAX_HEADERS:
        return f"At most {MAX_HEADERS} headers"
    for name, text in headers.items():
        if not HEADER_NAME.fullmatch(name):
            return f"Header name {name[:100]!r}: letters, digits, '-' and '_' only"
        if name.lower() in RESERVED_HEADERS:
            return f"Header {name} is set by the service"
        if not isinstance(text, str) or len(text) > MAX_HEADER_VALUE:
            return f"Header {name}: the value must be a string of at most {MAX_HEADER_VALUE} characters"
        if not (text.isascii() and text.isprintable()):
            return f"Header {name}: the value must be printable ASCII"
    return None
