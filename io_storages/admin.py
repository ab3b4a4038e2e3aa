"""Django admin for every storage of every provider in the registry (no per-provider code).

Secrets (each model's `secret_fields`) are never rendered: their inputs are empty password
fields, and leaving one empty keeps the stored value. A "remove the stored ..." checkbox next
to each clears it (e.g. to fall back to the server's own credentials). A change of any
connection field (host, endpoint, bucket...) needs the stored secrets entered again, as in the API.
"""

import copy

from django import forms
from django.contrib import admin, messages

from io_storages.base_models import STATUS_FIELDS
from io_storages.jobs import check_health, start_sync
from io_storages.registry import PROVIDERS
from io_storages.serializers import reenter_message


class StorageAdminForm(forms.ModelForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in self.secret_fields():
            field = self.fields[name]
            field.widget = forms.PasswordInput(render_value=False)
            field.required = False
            if getattr(self.instance, name, None):
                field.help_text = "A value is stored; leave empty to keep it."

    def secret_fields(self):
        return [name for name in self._meta.model.secret_fields if name in self.fields]

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk:
            self._require_secrets_for_a_new_connection(cleaned)
            for name in self.secret_fields():
                if cleaned.get(f"clear_{name}"):
                    cleaned[name] = None if self._meta.model._meta.get_field(name).null else ""
                elif not cleaned.get(name):  # left empty: keep what is stored
                    cleaned[name] = getattr(self.instance, name)
        return cleaned

    def _require_secrets_for_a_new_connection(self, cleaned):
        """Stored secrets are only sent where they were saved for (as in the API): when a
        connection field changes, each stored secret left empty must be entered again."""
        changed = copy.copy(self.instance)
        for name, value in cleaned.items():
            if name in self.fields and not name.startswith("clear_"):
                setattr(changed, name, value)
        given = [name for name in self.secret_fields() if cleaned.get(name) or cleaned.get(f"clear_{name}")]
        moved, missing = self.instance.secrets_to_reenter(changed, given=given)
        for name in missing:
            if name in self.fields:
                self.add_error(name, reenter_message(moved))


class StorageAdmin(admin.ModelAdmin):
    form = StorageAdminForm
    list_display = (
        "id",
        "title",
        "project",
        "status",
        "waiting",
        "last_sync",
        "last_sync_count",
        "sync_interval_minutes",
        "created_at",
    )
    list_filter = ("status",)
    list_select_related = ("project",)
    search_fields = ("title", "description")
    raw_id_fields = ("project",)
    readonly_fields = ("waiting", *STATUS_FIELDS)
    actions = ("sync_now",)

    @admin.display(description="Waiting because")
    def waiting(self, storage):
        """Why a queued sync has not started (e.g. no worker serves its queue)."""
        storage = check_health(storage)
        return storage.meta.get("waiting") if storage.status == storage.Status.QUEUED else None

    def get_form(self, request, obj=None, **kwargs):
        """On a change form, the form also has a `clear_<name>` checkbox for each secret."""
        if obj is not None:
            clears = {
                f"clear_{name}": forms.BooleanField(required=False, label=f"Remove the stored {name}")
                for name in self.model.secret_fields
            }
            kwargs["form"] = type(self.form.__name__, (self.form,), clears)
        return super().get_form(request, obj, **kwargs)

    @admin.action(description="Sync now")
    def sync_now(self, request, queryset):
        levels = {
            "completed": messages.SUCCESS,
            "completed_with_errors": messages.WARNING,
            "failed": messages.ERROR,
        }
        for storage in queryset.order_by("pk"):
            check_health(storage)
            if storage.status in storage.ACTIVE_STATUSES:
                self.message_user(request, f"{storage}: already {storage.status}, not started again", messages.WARNING)
                continue
            storage = start_sync(storage)
            text = f"{storage}: {storage.status}, last_sync_count={storage.last_sync_count}"
            if storage.traceback:
                text += f" ({storage.traceback.strip().splitlines()[-1]})"
            self.message_user(request, text, levels.get(storage.status, messages.INFO))


class StorageLinkAdmin(admin.ModelAdmin):
    """Read-only view of which task/annotation came from (or went to) which object."""

    list_select_related = ("storage",)
    search_fields = ("key",)

    def get_list_display(self, request):
        target = "task" if any(f.name == "task" for f in self.model._meta.fields) else "annotation"
        return ("id", "storage", target, "key", "object_exists", "created_at")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


for provider in PROVIDERS.values():
    for model in (provider.import_model, provider.export_model):
        admin.site.register(model, StorageAdmin)
        admin.site.register(model._meta.get_field("links").related_model, StorageLinkAdmin)
