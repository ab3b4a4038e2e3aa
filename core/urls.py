from django.contrib import admin
from django.urls import include
from django.urls import path as plain_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from core.api import path
from core.views import CurrentUserTokenAPI, WhoAmIAPI
from io_storages import views as resolve
from io_storages.localfiles.views import LocalFilesAPI
from io_storages.urls import urlpatterns as storage_urls
from projects import views as projects
from tasks import views as tasks

handler404 = "core.views.not_found"

urlpatterns = [
    plain_path("admin/", admin.site.urls),
    plain_path("django-rq/", include("django_rq.urls")),
    path("api/schema", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/current-user/token", CurrentUserTokenAPI.as_view(), name="current-user-token"),
    path("api/current-user/whoami", WhoAmIAPI.as_view(), name="current-user-whoami"),
    path("api/projects", projects.ProjectListAPI.as_view(), name="project-list"),
    path("api/projects/<int:pk>", projects.ProjectDetailAPI.as_view(), name="project-detail"),
    path("api/projects/<int:pk>/import", projects.ProjectImportAPI.as_view(), name="project-import"),
    path("api/projects/<int:pk>/next", projects.ProjectNextTaskAPI.as_view(), name="project-next"),
    path("api/tasks", tasks.TaskListAPI.as_view(), name="task-list"),
    path("api/tasks/<int:pk>", tasks.TaskDetailAPI.as_view(), name="task-detail"),
    path("api/tasks/<int:pk>/annotations", tasks.TaskAnnotationsAPI.as_view(), name="task-annotations"),
    path("api/annotations/<int:pk>", tasks.AnnotationDetailAPI.as_view(), name="annotation-detail"),
    *storage_urls,
    path("tasks/<int:pk>/resolve", resolve.TaskResolveAPI.as_view(), name="task-resolve"),
    path("tasks/<int:pk>/presign", resolve.TaskResolveAPI.as_view(), name="task-presign"),
    path("projects/<int:pk>/resolve", resolve.ProjectResolveAPI.as_view(), name="project-resolve"),
    path("projects/<int:pk>/presign", resolve.ProjectResolveAPI.as_view(), name="project-presign"),
    path("data/local-files", LocalFilesAPI.as_view(), name="local-files"),
]
