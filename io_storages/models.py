"""Every provider's models, registered under the `io_storages` app (one migrations folder)."""
from io_storages.s3.models import S3ExportStorage, S3ExportStorageLink, S3ImportStorage, S3ImportStorageLink  # noqa: F401
