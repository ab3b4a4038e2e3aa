"""Amazon S3 (and S3-compatible) import/export storages and their links."""

from django.db import models

from io_storages.base_models import (
    ExportStorage,
    ImportStorage,
    PresignMixin,
    ProjectStorageMixin,
    link_models,
)


class S3StorageMixin(models.Model):
    storage_type = "s3"
    url_scheme = "s3"
    secret_fields = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")

    bucket = models.TextField(help_text="S3 bucket name")
    prefix = models.TextField(null=True, blank=True, help_text="Key prefix (folder) inside the bucket")
    aws_access_key_id = models.TextField(null=True, blank=True)
    aws_secret_access_key = models.TextField(null=True, blank=True)
    aws_session_token = models.TextField(null=True, blank=True)
    aws_sse_kms_key_id = models.TextField(null=True, blank=True, help_text="KMS key id for SSE-KMS on export")
    region_name = models.TextField(null=True, blank=True)
    s3_endpoint = models.TextField(null=True, blank=True, help_text="Endpoint URL of an S3-compatible server")

    class Meta:
        abstract = True

    @property
    def location(self):
        return f"s3://{self.bucket}/{self.prefix or ''}"

    def get_client(self):
        from core.ssrf import check_peer, check_url, guard_url, is_trusted_endpoint
        from io_storages.s3.client import S3Client

        endpoint = self.s3_endpoint or None
        guards = {}
        if endpoint and not is_trusted_endpoint(endpoint):
            check_url(endpoint)
            # Checked again for every request and on every connected socket (DNS may change).
            guards = {"before_connect": guard_url, "check_peer": check_peer}
        return S3Client(
            self.bucket,
            aws_access_key_id=self.aws_access_key_id,
            aws_secret_access_key=self.aws_secret_access_key,
            aws_session_token=self.aws_session_token,
            region_name=self.region_name,
            endpoint_url=endpoint,
            sse_kms_key_id=self.aws_sse_kms_key_id,
            **guards,
        )


class S3ImportStorage(ProjectStorageMixin, S3StorageMixin, PresignMixin, ImportStorage):
    pass


class S3ExportStorage(ProjectStorageMixin, S3StorageMixin, ExportStorage):
    pass


S3ImportStorageLink, S3ExportStorageLink = link_models(S3ImportStorage, S3ExportStorage, "s3")
