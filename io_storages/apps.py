from django.apps import AppConfig


class IOStoragesConfig(AppConfig):
    name = "io_storages"
    verbose_name = "Cloud storages"

    def ready(self):
        from io_storages import signals  # noqa: F401  (connects auto-export)
        from io_storages.webhooks import events  # noqa: F401  (connects the sync webhooks)
