"""The webhook REST API, in Label Studio's layout: `/api/webhooks/` (list, `?project=`, create),
`/api/webhooks/<id>/` (read, update, delete), `/api/webhooks/info/` (the actions) and ours,
`POST /api/webhooks/<id>/test` (one signed test delivery, answered at once). A user sees the
webhooks of the projects of the user's organizations; any other is not found (404)."""

import uuid

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import generics, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from core.permissions import organization_filter
from io_storages.webhooks.delivery import deliver
from io_storages.webhooks.models import ACTIONS, WEBHOOK_TEST, Webhook
from io_storages.webhooks.serializers import WebhookSerializer
from projects.access import get_user_project

TEST_RESULT = inline_serializer(
    "WebhookTestResult",
    {
        "ok": serializers.BooleanField(help_text="Whether the receiver answered 2xx"),
        "status_code": serializers.IntegerField(allow_null=True, help_text="The receiver's HTTP status, if any"),
        "detail": serializers.CharField(help_text="What happened (the answer, or why nothing was sent)"),
    },
)
INFO = inline_serializer(
    "WebhookActions",
    {
        action: inline_serializer(
            f"WebhookAction{''.join(part.title() for part in action.split('_'))}",
            {
                "name": serializers.CharField(),
                "description": serializers.CharField(),
                "key": serializers.CharField(),
                "organization-only": serializers.BooleanField(),
            },
        )
        for action in ACTIONS
    },
)


class WebhookMixin:
    serializer_class = WebhookSerializer

    def get_queryset(self):
        return (
            Webhook.objects.filter(**organization_filter(self.request.user, "project__organization"))
            .select_related("project")
            .order_by("id")
        )


@extend_schema(tags=["Webhooks"])
class WebhookListAPI(WebhookMixin, generics.ListCreateAPIView):
    pagination_class = None

    def get_queryset(self):
        queryset = super().get_queryset()
        project_id = self.request.query_params.get("project") if self.request.method == "GET" else None
        if project_id:  # a project the user may not see (or no project at all): 404, as for storages
            queryset = queryset.filter(project=get_user_project(self.request.user, project_id))
        return queryset

    @extend_schema(
        parameters=[OpenApiParameter("project", int, description="Project id; without it, every project's webhooks")]
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


@extend_schema(tags=["Webhooks"])
class WebhookDetailAPI(WebhookMixin, generics.RetrieveUpdateDestroyAPIView):
    pass


@extend_schema(tags=["Webhooks"])
class WebhookTestAPI(WebhookMixin, generics.GenericAPIView):
    """Send one `WEBHOOK_TEST` event to the webhook now (signed like any other, not retried),
    also when it is inactive, and answer how the receiver answered."""

    @extend_schema(request=None, responses={200: TEST_RESULT})
    def post(self, request, pk):
        webhook = self.get_object()
        event = {"project": {"id": webhook.project_id, "title": webhook.project.title}, "webhook": {"id": webhook.pk}}
        return Response(deliver(webhook, WEBHOOK_TEST, event, str(uuid.uuid4())).as_dict())


@extend_schema(tags=["Webhooks"])
class WebhookInfoAPI(APIView):
    """The actions a webhook can be sent for, in Label Studio's shape."""

    @extend_schema(
        responses={200: INFO},
        parameters=[OpenApiParameter("organization-only", bool, description="Only (true) or no (false) org actions")],
    )
    def get(self, request):
        result = dict(ACTIONS)
        organization_only = request.query_params.get("organization-only")
        if organization_only is not None:
            wanted = organization_only == "true"
            result = {key: value for key, value in result.items() if value["organization-only"] == wanted}
        return Response(result)
