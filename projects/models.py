"""Labeling projects. A project belongs to one organization, which decides who sees it."""

import re

from django.conf import settings
from django.db import models

# `value="$image"` in a label config names the task data key objects are imported under.
_DATA_KEY = re.compile(r"""value\s*=\s*["']\$([\w.-]+)["']""")
UNDEFINED_DATA_KEY = "$undefined$"


class Project(models.Model):
    title = models.CharField(max_length=50)
    description = models.TextField(blank=True, default="")
    label_config = models.TextField(blank=True, default="<View></View>")
    organization = models.ForeignKey("core.Organization", on_delete=models.CASCADE, related_name="projects")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="created_projects"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    maximum_annotations = models.PositiveIntegerField(default=1)

    def __str__(self):
        return f"{self.title} (#{self.id})"

    @property
    def data_key(self):
        """Data key blob imports use: the first `$variable` of the label config."""
        match = _DATA_KEY.search(self.label_config or "")
        return match.group(1) if match else UNDEFINED_DATA_KEY


class View(models.Model):
    """A data manager tab (Label Studio's `data_manager.View`): its settings (`data`: filters,
    ordering, columns...) are stored as sent. Only `ordering` on task columns is applied
    (docs/decisions.md); the tasks of a view are those of its project."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="views")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="dm_views")
    data = models.JSONField(default=dict, blank=True)
    order = models.IntegerField(default=0)

    class Meta:
        ordering = ["order", "id"]

    def __str__(self):
        return f"View #{self.id} of project #{self.project_id}"
