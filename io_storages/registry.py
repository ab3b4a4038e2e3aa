"""Storage types the service knows: name -> models, by dotted path (imported when first used).

Adding a provider = one entry here + its package (models, client). Everything else (API,
serializers, sync, export, admin, commands) is generic over these entries.
"""

from dataclasses import dataclass
from functools import cached_property

from django.utils.module_loading import import_string


@dataclass(frozen=True)
class Provider:
    name: str  # API path segment and `type` field: s3, gcs, azure, redis, localfiles
    title: str
    import_model_path: str
    export_model_path: str

    @property
    def client_module(self):
        """`io_storages.<package>.client`, next to the models."""
        return self.import_model_path.rsplit(".models.", 1)[0] + ".client"

    @cached_property
    def import_model(self):
        return import_string(self.import_model_path)

    @cached_property
    def export_model(self):
        return import_string(self.export_model_path)


PROVIDERS = {
    p.name: p
    for p in [
        Provider("s3", "AWS S3", "io_storages.s3.models.S3ImportStorage", "io_storages.s3.models.S3ExportStorage"),
        Provider(
            "gcs",
            "Google Cloud Storage",
            "io_storages.gcs.models.GCSImportStorage",
            "io_storages.gcs.models.GCSExportStorage",
        ),
        Provider(
            "azure",
            "Microsoft Azure",
            "io_storages.azure_blob.models.AzureBlobImportStorage",
            "io_storages.azure_blob.models.AzureBlobExportStorage",
        ),
        Provider(
            "redis",
            "Redis",
            "io_storages.redis.models.RedisImportStorage",
            "io_storages.redis.models.RedisExportStorage",
        ),
        Provider(
            "localfiles",
            "Local files",
            "io_storages.localfiles.models.LocalFilesImportStorage",
            "io_storages.localfiles.models.LocalFilesExportStorage",
        ),
    ]
}


def storage_model(name, export=False):
    provider = PROVIDERS[name]
    return provider.export_model if export else provider.import_model


def all_storage_models(export=False):
    return [storage_model(name, export) for name in PROVIDERS]


def model_label(model):
    """`app_label.ModelName`: how jobs name a storage model (jobs carry plain strings)."""
    return model._meta.label


def storage_from_label(label, pk):
    """The storage a job names, or None when it was deleted meanwhile."""
    from django.apps import apps

    return apps.get_model(label).objects.filter(pk=pk).first()
