"""The webhook model: a project's URL that receives signed JSON POSTs on storage sync events.

Field names are Label Studio's (`webhooks.Webhook`: url, send_payload, send_for_all_actions,
headers, is_active, actions); the actions are kept on the row as a JSON list (Label Studio has
a `WebhookAction` table) since a project has a handful of webhooks, read whole on each event.
`secret` signs the body and is encrypted at rest (`EncryptedTextField`), like storage secrets.
"""

from django.db import models

from io_storages.fields import EncryptedTextField

__all__ = ["Webhook"]

STORAGE_SYNC_STARTED = "STORAGE_SYNC_STARTED"
STORAGE_SYNC_COMPLETED = "STORAGE_SYNC_COMPLETED"
STORAGE_SYNC_FAILED = "STORAGE_SYNC_FAILED"
#: the test delivery of `POST /api/webhooks/<id>/test` (not an action one subscribes to)
WEBHOOK_TEST = "WEBHOOK_TEST"

#: action -> what Label Studio's `GET /api/webhooks/info/` says of it
ACTIONS = {
    STORAGE_SYNC_STARTED: {
        "name": "Storage sync started",
        "description": "A sync of an import or export storage of the project started running",
        "key": "storage",
        "organization-only": False,
    },
    STORAGE_SYNC_COMPLETED: {
        "name": "Storage sync completed",
        "description": "A sync ended with status completed or completed_with_errors",
        "key": "storage",
        "organization-only": False,
    },
    STORAGE_SYNC_FAILED: {
        "name": "Storage sync failed",
        "description": "A sync ended with status failed (the first line of its traceback is in error)",
        "key": "storage",
        "organization-only": False,
    },
}


class Webhook(models.Model):
    project = models.ForeignKey(
        "projects.Project", on_delete=models.CASCADE, related_name="webhooks", help_text="Project whose events are sent"
    )
    url = models.CharField(max_length=2048, help_text="URL that receives the POSTs (http:// or https://)")
    secret = EncryptedTextField(
        blank=True,
        default="",
        help_text="Key of the HMAC-SHA256 signature of each body (X-Signature-256); write-only, encrypted at rest",
    )
    send_payload = models.BooleanField(default=True, help_text="False: the body holds only the action and timestamp")
    send_for_all_actions = models.BooleanField(default=True, help_text="False: only the actions listed in `actions`")
    headers = models.JSONField(default=dict, blank=True, help_text="Extra request headers, {name: value}")
    is_active = models.BooleanField(default=True, help_text="False: nothing is sent")
    actions = models.JSONField(default=list, blank=True, help_text="Actions sent when send_for_all_actions is false")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    #: fields never rendered (API: write-only; admin: a password input)
    secret_fields = ("secret",)

    class Meta:
        ordering = ("id",)

    def __str__(self):
        return f"Webhook #{self.pk} of project #{self.project_id}"

    def wants(self, action):
        """Whether this webhook is sent for `action`."""
        return self.is_active and (self.send_for_all_actions or action in (self.actions or ()))
