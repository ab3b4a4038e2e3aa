"""Django admin of webhooks: the secret is never rendered (an empty password input keeps the
stored one, a checkbox removes it); the URL, headers and actions are checked as in the API."""

from django import forms
from django.contrib import admin

from io_storages import ssrf
from io_storages.webhooks.models import ACTIONS, Webhook
from io_storages.webhooks.serializers import headers_problem


class WebhookAdminForm(forms.ModelForm):
    clear_secret = forms.BooleanField(required=False, label="Remove the stored secret")

    class Meta:
        model = Webhook
        fields = "__all__"
        widgets = {"secret": forms.PasswordInput(render_value=False)}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["secret"].required = False
        if self.instance.pk and self.instance.secret:
            self.fields["secret"].help_text = "A secret is stored; leave empty to keep it."

    def clean_url(self):
        url = self.cleaned_data["url"]
        try:
            ssrf.check_url(url, what="url")
        except ssrf.SSRFError as e:
            raise forms.ValidationError(str(e))
        return url

    def clean_headers(self):
        headers = self.cleaned_data["headers"]
        problem = headers_problem(headers)
        if problem:
            raise forms.ValidationError(problem)
        return headers

    def clean_actions(self):
        actions = self.cleaned_data["actions"]
        if not isinstance(actions, list) or not all(isinstance(a, str) and a in ACTIONS for a in actions):
            raise forms.ValidationError(f"A JSON list of actions among {', '.join(ACTIONS)}")
        return sorted(set(actions))

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("clear_secret"):
            cleaned["secret"] = ""
        elif not cleaned.get("secret") and self.instance.pk:
            cleaned["secret"] = self.instance.secret
        return cleaned


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    form = WebhookAdminForm
    list_display = ("id", "project", "url", "is_active", "send_for_all_actions", "created_at")
    list_filter = ("is_active",)
    list_select_related = ("project",)
    raw_id_fields = ("project",)
    search_fields = ("url",)
