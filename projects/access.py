"""Which projects a user may see (shared by the project, task and storage APIs)."""

from django.http import Http404
from django.shortcuts import get_object_or_404

from core.api import is_id
from core.permissions import organization_filter
from projects.models import Project, View


def user_projects(user):
    """Projects `user` may see: those of the user's organizations."""
    return Project.objects.filter(**organization_filter(user))


def get_user_project(user, pk):
    """The project `pk` if `user` may see it, else 404 (its existence is not revealed, and a
    value that cannot be an id names none)."""
    if not is_id(pk):
        raise Http404("No Project matches the given query.")
    return get_object_or_404(user_projects(user), pk=pk)


def get_user_view(user, pk):
    """The data manager view `pk` if `user` may see its project, else 404."""
    if not is_id(pk):
        raise Http404("No View matches the given query.")
    return get_object_or_404(View.objects.filter(project__in=user_projects(user)).select_related("project"), pk=pk)
