"""Amazon S3 (and S3-compatible) import/export storages and their links."""

from django.db import models

from io_storages.base_models import (
    ExportStorage,
    ExportStorageLink,
    ImportStorage,
    ImportStorageLink,
    PresignMixin,
    ProjectStorageMixin,
)
from io_storages.fields import EncryptedTextField


class S3StorageMixin(models.Model):
    bucket_field = "bucket"
    prefix_field = "prefix"
    secret_fields = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")
    # The bucket too: with a custom endpoint, boto3 may name it in the host it connects to.
    address_fields = ("s3_endpoint", "region_name", "bucket")

    bucket = models.TextField(help_text="S3 bucket name")
    prefix = models.TextField(null=True, blank=True, help_text="Key prefix (folder) inside the bucket")
    aws_access_key_id = EncryptedTextField(null=True, blank=True)
    aws_secret_access_key = EncryptedTextField(null=True, blank=True)
    aws_session_token = EncryptedTextField(null=True, blank=True)
    aws_sse_kms_key_id = models.TextField(null=True, blank=True, help_text="KMS key id for SSE-KMS on export")
    region_name = models.TextField(null=True, blank=True)
    s3_endpoint = models.TextField(null=True, blank=True, help_text="Endpoint URL of an S3-compatible server")

    class Meta:
        abstract = True


class S3ImportStorage(ProjectStorageMixin, S3StorageMixin, PresignMixin, ImportStorage):
    # The SQS queue is read with the storage's keys: a new queue URL needs them again.
    address_fields = S3StorageMixin.address_fields + ("event_queue",)


class S3ExportStorage(ProjectStorageMixin, S3StorageMixin, ExportStorage):
    pass


class S3ImportStorageLink(ImportStorageLink):
    storage = models.ForeignKey(S3ImportStorage, on_delete=models.CASCADE, related_name="links")

    class Meta:
        indexes = [models.Index(fields=["storage", "key"], name="s3_import_link_key")]


class S3ExportStorageLink(ExportStorageLink):
    storage = models.ForeignKey(S3ExportStorage, on_delete=models.CASCADE, related_name="links")
