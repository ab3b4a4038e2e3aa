from core.api import path
from projects import views

urlpatterns = [
    path("api/projects", views.ProjectListAPI.as_view(), name="project-list"),
    path("api/projects/<int:pk>", views.ProjectDetailAPI.as_view(), name="project-detail"),
    path("api/projects/<int:pk>/import", views.ProjectImportAPI.as_view(), name="project-import"),
    path("api/projects/<int:pk>/next", views.ProjectNextTaskAPI.as_view(), name="project-next"),
    path("api/dm/views", views.DataManagerViewListAPI.as_view(), name="dm-view-list"),
    path("api/dm/views/<int:pk>", views.DataManagerViewDetailAPI.as_view(), name="dm-view-detail"),
]
