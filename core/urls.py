import functools

import django_rq.urls
from django.conf import settings
from django.contrib import admin
from django.http import HttpResponse
from django.urls import URLPattern, include
from django.urls import path as plain_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from core import jobs
from core.api import path
from core.views import CurrentUserTokenAPI, WhoAmIAPI

handler404 = "core.views.not_found"
handler500 = "core.views.server_error"


def _needs_redis(view):
    """A django-rq page for staff: a 503 saying why when there is no Redis to show (django-rq
    would fail with a 500). Everyone else gets the view's own answer (the admin login)."""

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        user = request.user
        if user.is_active and user.is_staff and not jobs.redis_available():
            if settings.REDIS_URL:
                text = "Redis (REDIS_URL) does not answer: background jobs run in-process until it does."
            else:
                text = "Redis is not configured (REDIS_URL is empty): background jobs run in-process, no queues."
            return HttpResponse(text, status=503, content_type="text/plain; charset=utf-8")
        return view(request, *args, **kwargs)

    return wrapped


django_rq_urls = (
    [URLPattern(p.pattern, _needs_redis(p.callback), p.default_args, p.name) for p in django_rq.urls.urlpatterns],
    "django_rq",
)

urlpatterns = [
    plain_path("admin/", admin.site.urls),
    plain_path("django-rq/", include(django_rq_urls)),
    path("api/schema", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/current-user/token", CurrentUserTokenAPI.as_view(), name="current-user-token"),
    path("api/current-user/whoami", WhoAmIAPI.as_view(), name="current-user-whoami"),
    plain_path("", include("projects.urls")),
    plain_path("", include("tasks.urls")),
    plain_path("", include("io_storages.urls")),
    plain_path("", include("core.console.urls")),  # the browser console: last, so it never shadows the API
]
