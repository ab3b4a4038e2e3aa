"""Organizations: the unit of access. A user sees a project (and its tasks, storages, files)
only when the user is a member of the project's organization."""

from django.conf import settings
from django.db import models


class Organization(models.Model):
    title = models.CharField(max_length=1000)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="Membership", related_name="organizations")

    def __str__(self):
        return self.title


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "organization"], name="unique_membership")]


def active_organization(user):
    """The organization new projects of `user` go to: the first one the user joined."""
    membership = user.memberships.select_related("organization").order_by("created_at", "id").first()
    return membership.organization if membership else None
