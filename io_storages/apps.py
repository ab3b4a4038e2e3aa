from django.apps import AppConfig


class IOStoragesConfig(AppConfig):
    name = "io_storages"
    verbose_name = "Cloud storages"
