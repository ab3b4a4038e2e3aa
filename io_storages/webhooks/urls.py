from core.api import path
from io_storages.webhooks import api

urlpatterns = [
    path("api/webhooks", api.WebhookListAPI.as_view(), name="webhook-list"),
    path("api/webhooks/info", api.WebhookInfoAPI.as_view(), name="webhook-info"),
    path("api/webhooks/<int:pk>", api.WebhookDetailAPI.as_view(), name="webhook-detail"),
    path("api/webhooks/<int:pk>/test", api.WebhookTestAPI.as_view(), name="webhook-test"),
]
