"""Abstract storage models shared by every provider.

`StorageInfo` holds the sync status machine and progress counters; `ImportStorage` and
`ExportStorage` add what import/export storages have in common. A provider subclasses them
with its connection fields and `get_client()`; all I/O goes through the returned
`io_storages.client.StorageClient`, so sync, export, preview and the proxy exist once.
"""

import re
from datetime import timedelta

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from core import jobs


class StorageInfo(models.Model):
    class Status(models.TextChoices):
        INITIALIZED = "initialized", "Initialized"
        QUEUED = "queued", "Queued"
        IN_PROGRESS = "in_progress", "In progress"
        FAILED = "failed", "Failed"
        COMPLETED = "completed", "Completed"
        COMPLETED_WITH_ERRORS = "completed_with_errors", "Completed with errors"

    ACTIVE_STATUSES = (Status.QUEUED, Status.IN_PROGRESS)

    last_sync = models.DateTimeField(null=True, blank=True, help_text="End of the last finished sync")
    last_sync_count = models.PositiveIntegerField(null=True, blank=True, help_text="Objects synced by the last sync")
    last_sync_job = models.CharField(max_length=256, null=True, blank=True, help_text="RQ job id of the last sync")
    status = models.CharField(max_length=64, choices=Status.choices, default=Status.INITIALIZED)
    traceback = models.TextField(null=True, blank=True, help_text="What went wrong in the last sync")
    meta = models.JSONField(default=dict, blank=True, help_text="Progress details of the last sync")
    created_at = models.DateTimeField(auto_now_add=True)
    synchronizable = models.BooleanField(default=True)

    class Meta:
        abstract = True

    # --- status transitions (each is one UPDATE of the fields it changes) -----
    def _update(self, **fields):
        if fields.get("traceback"):  # messages quote keys and values: PostgreSQL stores no NUL
            fields["traceback"] = fields["traceback"].replace("\x00", "\\u0000")
        for name, value in fields.items():
            setattr(self, name, value)
        type(self).objects.filter(pk=self.pk).update(**fields)

    def info_set_queued(self):
        now = timezone.now().isoformat()
        meta = {"time_queued": now, "attempts": self.meta.get("attempts", 0) + 1, "tasks_existed": 0}
        self._update(status=self.Status.QUEUED, traceback=None, last_sync_count=0, last_sync_job=None, meta=meta)

    def info_set_in_progress(self):
        now = timezone.now().isoformat()
        meta = {**self.meta, "time_in_progress": now, "time_last_ping": now}
        self._update(status=self.Status.IN_PROGRESS, meta=meta)

    def info_update_progress(self, last_sync_count, **meta):
        meta = {**self.meta, **meta, "time_last_ping": timezone.now().isoformat()}
        self._update(last_sync_count=last_sync_count, meta=meta)

    def info_set_finished(self, last_sync_count, errors=None, **meta):
        now = timezone.now()
        started = self.meta.get("time_in_progress")
        duration = (now - _parse_time(started)).total_seconds() if started else None
        meta = {**self.meta, **meta, "time_last_ping": now.isoformat(), "duration": duration}
        status = self.Status.COMPLETED_WITH_ERRORS if errors else self.Status.COMPLETED
        self._update(
            status=status,
            last_sync=now,
            last_sync_count=last_sync_count,
            traceback="\n".join(errors) if errors else None,
            meta=meta,
        )

    def info_set_failed(self, message):
        meta = {**self.meta, "time_failure": timezone.now().isoformat()}
        self._update(status=self.Status.FAILED, traceback=message, meta=meta)

    # --- health check ----------------------------------------------------
    def ensure_status(self):
        """Mark a queued/running sync whose job died without telling us as failed.

        Covers: the job failed or vanished from Redis (OOM kill, redeploy, queue flushed),
        and the worker stopped pinging for 5 timer periods.
        """
        if self.status not in self.ACTIVE_STATUSES:
            return
        timeout = timedelta(seconds=5 * settings.STORAGE_IN_PROGRESS_TIMER)
        now = timezone.now()
        if self.last_sync_job and jobs.redis_available():
            state = jobs.job_state(self.last_sync_job)
            if state is None:
                return self.info_set_failed(
                    f"Sync job {self.last_sync_job} vanished from the queue (worker killed or queue flushed)"
                )
            if state in ("failed", "stopped", "canceled"):
                return self.info_set_failed(f"Sync job {self.last_sync_job} {state} in the worker")
        if self.status == self.Status.IN_PROGRESS:
            last_ping = _parse_time(self.meta.get("time_last_ping"))
            if last_ping is None or now - last_ping > timeout:
                return self.info_set_failed(
                    f"Sync stopped: no progress ping for more than {int(timeout.total_seconds())} s "
                    "(the worker was probably killed)"
                )
        elif not self.last_sync_job:
            # Queued without a job: an in-process sync whose process died before starting it.
            queued = _parse_time(self.meta.get("time_queued"))
            if queued is None or now - queued > timeout:
                return self.info_set_failed("Sync was queued but never started")


def _parse_time(value):
    return parse_datetime(value) if value else None


class Storage(StorageInfo):
    """A configured connection to one provider location."""

    #: registry name (`s3`, `gcs`, ...), set by each provider's models
    storage_type = ""

    title = models.CharField(max_length=256, null=True, blank=True)
    description = models.TextField(null=True, blank=True)

    class Meta:
        abstract = True

    def __str__(self):
        return f"{self.storage_type} storage #{self.pk} ({self.title or self.location})"

    def get_client(self):
        """A `StorageClient` for this storage's bucket/container/path."""
        raise NotImplementedError

    @property
    def location(self):
        """Human-readable place, e.g. `s3://bucket/prefix`."""
        raise NotImplementedError

    @property
    def key_prefix(self):
        """Listing prefix: the configured prefix, ending with `/` when not empty."""
        prefix = (getattr(self, "prefix", "") or "").lstrip("/")
        return prefix if not prefix or prefix.endswith("/") else prefix + "/"

    #: fields that do not change how the provider is reached (everything else does)
    NON_CONNECTION_FIELDS = {
        "id",
        "title",
        "description",
        "project",
        "regex_filter",
        "use_blob_urls",
        "recursive_scan",
        "presign",
        "presign_ttl",
        "can_delete_objects",
        "synchronizable",
        "last_sync",
        "last_sync_count",
        "last_sync_job",
        "status",
        "traceback",
        "meta",
        "created_at",
    }

    def connection_settings(self):
        """The values that decide how the provider is reached (a hashable tuple)."""
        return tuple(
            (f.attname, getattr(self, f.attname))
            for f in self._meta.concrete_fields
            if f.name not in self.NON_CONNECTION_FIELDS
        )

    def export_key(self, name):
        """Key of an exported object called `name`: `<prefix>/<name>`."""
        prefix = (getattr(self, "prefix", "") or "").strip("/")
        return f"{prefix}/{name}" if prefix else name

    def validate_connection(self, client=None):
        """Raise `StorageError` naming the problem unless the location is usable."""
        (client or self.get_client()).check(prefix=None)

    def sync(self, **options):
        """Start a sync job (see io_storages.jobs.start_sync); returns the refreshed storage."""
        from io_storages.jobs import start_sync

        return start_sync(self, **options)


class ProjectStorageMixin(models.Model):
    project = models.ForeignKey(
        "projects.Project", on_delete=models.CASCADE, related_name="%(class)ss", help_text="Project of this storage"
    )

    class Meta:
        abstract = True


class ImportStorage(Storage):
    is_export = False

    regex_filter = models.TextField(
        null=True, blank=True, help_text="Only import keys matching this Python regex (matched from the start)"
    )
    use_blob_urls = models.BooleanField(
        default=False, help_text="One task per object (its URL in the data) instead of parsing objects as tasks"
    )
    recursive_scan = models.BooleanField(default=False, help_text="List the whole tree below the prefix")

    class Meta:
        abstract = True

    def validate_connection(self, client=None):
        # An import storage is useless without objects under its prefix: say so at once.
        (client or self.get_client()).check(prefix=self.key_prefix)

    def key_for_uri(self, scheme, bucket, key):
        """The object key of `scheme://bucket/key` if this storage serves it, else None."""
        if scheme == self.url_scheme and bucket == self.uri_bucket:
            return key
        return None

    @property
    def uri_bucket(self):
        """The bucket/container part of this storage's URIs."""
        return getattr(self, "bucket", None) or getattr(self, "container", None)

    def iter_objects(self, client=None):
        """Objects a sync would consider: listed under the prefix, filtered by regex_filter."""
        client = client or self.get_client()
        pattern = re.compile(self.regex_filter) if self.regex_filter else None
        for obj in client.list_objects(self.key_prefix, recursive=self.recursive_scan):
            if pattern is None or pattern.match(obj.key):
                yield obj

    def run_sync(self, progress):
        from io_storages.sync import ImportSync

        return ImportSync(self, progress).run()


class PresignMixin(models.Model):
    """Import storages of providers that can hand out time-limited URLs (s3, gcs, azure)."""

    presign = models.BooleanField(default=True, help_text="Redirect to presigned URLs instead of proxying bytes")
    # Providers refuse signed URLs valid longer than 7 days (S3 SigV4, GCS v4).
    presign_ttl = models.PositiveSmallIntegerField(
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(7 * 24 * 60)],
        help_text="Presigned URL lifetime, minutes (1 to 10080)",
    )

    class Meta:
        abstract = True


class ExportStorage(Storage):
    is_export = True

    can_delete_objects = models.BooleanField(
        null=True, blank=True, default=False, help_text="Delete exported objects when annotations are deleted"
    )

    class Meta:
        abstract = True

    def run_sync(self, progress, only_new=False):
        """Export all annotations of the project, or only those never exported here."""
        from io_storages.export import export_annotations
        from tasks.models import Annotation

        annotations = Annotation.objects.filter(project_id=self.project_id)
        if only_new:
            annotations = annotations.exclude(pk__in=self.links.values("annotation_id"))
        return export_annotations(self, annotations, progress)


class ImportStorageLink(models.Model):
    """One imported task and where it came from (`key`, and its row for multi-task files)."""

    task = models.OneToOneField("tasks.Task", on_delete=models.CASCADE, related_name="%(class)s")
    key = models.TextField(help_text="Object key the task was imported from")
    row_index = models.IntegerField(null=True, blank=True, help_text="Row/item number inside the object")
    row_group = models.IntegerField(null=True, blank=True, help_text="Parquet row group")
    object_exists = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True  # concrete links index (storage, key): "already linked?" is asked per batch


class ExportStorageLink(models.Model):
    """One annotation written to an export storage, and under which key."""

    annotation = models.ForeignKey("tasks.Annotation", on_delete=models.CASCADE, related_name="%(class)ss")
    key = models.TextField(help_text="Object key written")
    object_exists = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
        constraints = [
            models.UniqueConstraint(fields=["storage", "annotation"], name="%(class)s_unique_storage_annotation")
        ]


def link_models(import_model, export_model, index_prefix):
    """The two link models of a provider (`<Import model>Link`, `<Export model>Link`), declared
    in the provider's models module: they differ between providers only by their storage FK."""
    module = import_model.__module__
    import_link = type(
        f"{import_model.__name__}Link",
        (ImportStorageLink,),
        {
            "__module__": module,
            "storage": models.ForeignKey(import_model, on_delete=models.CASCADE, related_name="links"),
            "Meta": type(
                "Meta",
                (),
                {"indexes": [models.Index(fields=["storage", "key"], name=f"{index_prefix}_import_link_key")]},
            ),
        },
    )
    export_link = type(
        f"{export_model.__name__}Link",
        (ExportStorageLink,),
        {
            "__module__": module,
            "storage": models.ForeignKey(export_model, on_delete=models.CASCADE, related_name="links"),
            "Meta": type("Meta", (ExportStorageLink.Meta,), {}),
        },
    )
    return import_link, export_link
