"""Which projects a user may see (shared by the project, task and storage APIs)."""

from django.shortcuts import get_object_or_404

from core.permissions import organization_filter
from projects.models import Project


def user_projects(user):
    """Projects `user` may see: those of the user's organizations."""
    return Project.objects.filter(**organization_filter(user))


def get_user_project(user, pk):
    """The project `pk` if `user` may see it, else 404 (its existence is not revealed)."""
    return get_object_or_404(user_projects(user), pk=pk)


def get_user_view(user, pk):
    """The data manager view `pk` if `user` may see its project, else 404."""
    from projects.models import View

    return get_object_or_404(View.objects.filter(project__in=user_projects(user)).select_related("project"), pk=pk)
