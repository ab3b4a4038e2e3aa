"""Console URLs, mounted at `/` after the API's (core/urls.py), so they never shadow one."""

from django.urls import path

from core.console import views

urlpatterns = [
    path("", views.projects, name="console-projects"),
    path("login/", views.login, name="console-login"),
    path("logout/", views.logout, name="console-logout"),
    path("projects/<int:project_id>/", views.project, name="console-project"),
    path("projects/<int:project_id>/tasks/<int:task_id>/", views.task, name="console-task"),
]
