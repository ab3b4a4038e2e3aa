from django.contrib import admin
from django.urls import include
from django.urls import path as plain_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from core.api import path
from core.views import CurrentUserTokenAPI, WhoAmIAPI

handler404 = "core.views.not_found"

urlpatterns = [
    plain_path("admin/", admin.site.urls),
    plain_path("django-rq/", include("django_rq.urls")),
    path("api/schema", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/current-user/token", CurrentUserTokenAPI.as_view(), name="current-user-token"),
    path("api/current-user/whoami", WhoAmIAPI.as_view(), name="current-user-whoami"),
    plain_path("", include("projects.urls")),
    plain_path("", include("tasks.urls")),
    plain_path("", include("io_storages.urls")),
]
