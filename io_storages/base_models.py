"""Abstract storage models shared by every provider.

`StorageInfo` holds the sync status fields and their transitions; `ImportStorage` and
`ExportStorage` add what import/export storages have in common. A provider subclasses them
with its connection fields, names its location fields (`bucket_field`, `prefix_field`) and
writes its two link models out. Its identity (type, URI scheme, client) is its registry
entry; `get_client()` builds the provider's `StorageClient`, through which all I/O goes.

Models hold data and its rules. Starting, running and health-checking syncs is
`io_storages.jobs`; serving files is `io_storages.views`.
"""

import math

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.functional import classproperty

from io_storages import registry

#: what a sync writes and the API shows read-only: the status machine and its report
STATUS_FIELDS = ("status", "last_sync", "last_sync_count", "last_sync_job", "traceback", "meta", "created_at")


MAX_SYNC_INTERVAL_MINUTES = 366 * 24 * 60  # a year: anything longer is a typo


def validate_sync_interval(minutes):
    """`sync_interval_minutes` (API and admin): empty, or minutes between the configured
    minimum (each sync lists the whole location) and a year."""
    if minutes is None:
        return
    low = settings.STORAGE_SYNC_MIN_INTERVAL_MINUTES
    if not math.isfinite(minutes) or not low <= minutes <= MAX_SYNC_INTERVAL_MINUTES:
        raise ValidationError(
            f"Sync interval must be between {low:g} and {MAX_SYNC_INTERVAL_MINUTES} minutes "
            "(the shortest is STORAGE_SYNC_MIN_INTERVAL_MINUTES), or empty for manual syncs only"
        )


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
        if "events" in self.meta:  # what bucket notifications imported (io_storages.events) is not this sync's
            meta["events"] = self.meta["events"]
        self._update(status=self.Status.QUEUED, traceback=None, last_sync_count=0, last_sync_job=None, meta=meta)

    def info_set_in_progress(self):
        now = timezone.now().isoformat()
        meta = {**self.meta, "time_in_progress": now, "time_last_ping": now}
        meta.pop("waiting", None)
        self._update(status=self.Status.IN_PROGRESS, meta=meta)

    def info_note_waiting(self, message):
        """Say in `meta.waiting` why a queued sync does not start (None: clear it). Written
        only while the row is still queued, so a sync that just started keeps its meta."""
        if self.meta.get("waiting") == message:
            return
        meta = {**self.meta, "waiting": message}
        if message is None:
            del meta["waiting"]
        if type(self).objects.filter(pk=self.pk, status=self.Status.QUEUED).update(meta=meta):
            self.meta = meta

    def info_update_progress(self, last_sync_count, **meta):
        meta = {**self.meta, **meta, "time_last_ping": timezone.now().isoformat()}
        self._update(last_sync_count=last_sync_count, meta=meta)

    def info_set_finished(self, last_sync_count, errors=None, **meta):
        now = timezone.now()
        started = self.meta_time("time_in_progress")
        duration = (now - started).total_seconds() if started else None
        meta = {
            **self.meta,
            **meta,
            "time_last_ping": now.isoformat(),
            "time_completed": now.isoformat(),  # Label Studio's key
            "duration": duration,
        }
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
        meta.pop("waiting", None)
        self._update(status=self.Status.FAILED, traceback=message, meta=meta)

    def meta_time(self, name):
        """The time the transitions stored in `meta[name]` (`time_queued`, ...), or None."""
        value = self.meta.get(name)
        return parse_datetime(value) if value else None


class Storage(StorageInfo):
    """A configured connection to one provider location."""

    #: the model field naming the bucket/container (None: the provider has none)
    bucket_field = None
    #: the model field holding the key prefix that listing starts from (None: no prefix)
    prefix_field = None
    #: connection fields that are write-only in the API and never rendered in the admin
    secret_fields = ()
    #: the fields that decide where the secrets are sent: changing one needs them again
    address_fields = ()

    title = models.CharField(max_length=256, null=True, blank=True)
    description = models.TextField(null=True, blank=True)
    sync_interval_minutes = models.FloatField(
        null=True,
        blank=True,
        validators=[validate_sync_interval],
        help_text="Minutes between automatic syncs (at least STORAGE_SYNC_MIN_INTERVAL_MINUTES); empty: manual only",
    )

    class Meta:
        abstract = True

    def __str__(self):
        return f"{self.storage_type} storage #{self.pk} ({self.title or self.location})"

    # --- identity: the registry entry ---------------------------------------
    @classproperty
    def provider(cls):
        return registry.provider_of(cls)

    @classproperty
    def storage_type(cls):
        return cls.provider.type

    @classproperty
    def url_scheme(cls):
        return cls.provider.scheme

    def get_client(self):
        """A new `StorageClient` for this storage's location (see `registry.shared_client`)."""
        return self.provider.new_client(self)

    # --- location ----------------------------------------------------------------
    @property
    def bucket_name(self):
        return getattr(self, self.bucket_field) if self.bucket_field else None

    @property
    def configured_prefix(self):
        return (getattr(self, self.prefix_field) or "") if self.prefix_field else ""

    @property
    def location(self):
        """Human-readable place, e.g. `s3://bucket/prefix`."""
        return f"{self.url_scheme}://{self.bucket_name}/{self.configured_prefix}"

    @property
    def key_prefix(self):
        """Listing prefix: the configured prefix, ending with `/` when not empty."""
        prefix = self.configured_prefix.lstrip("/")
        return prefix if not prefix or prefix.endswith("/") else prefix + "/"

    def export_key(self, name):
        """Key of an exported object called `name`: `<prefix>/<name>`."""
        prefix = self.configured_prefix.strip("/")
        return f"{prefix}/{name}" if prefix else name

    def uri_for(self, key):
        """The URI task data holds for `key`: `s3://bucket/key`, or `redis://key` for
        providers without buckets (their keys include the prefix)."""
        if self.provider.has_buckets:
            return f"{self.url_scheme}://{self.bucket_name}/{key}"
        return f"{self.url_scheme}://{key}"

    def key_for_uri(self, scheme, bucket, key):
        """The object key of `scheme://bucket/key` (split by `resolve.split_uri`) if this
        storage serves it, else None. Without buckets the whole path is the key, served
        when it lies under the storage's prefix."""
        if scheme is None or scheme != self.url_scheme:
            return None
        if self.provider.has_buckets:
            return key if bucket == self.bucket_name else None
        full_key = f"{bucket}/{key}" if key else bucket
        return full_key if full_key.startswith(self.key_prefix) else None

    # --- connection ----------------------------------------------------------------
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
        "sync_interval_minutes",
        "event_queue",
        *STATUS_FIELDS,
    }

    def connection_settings(self):
        """The values that decide how the provider is reached (a hashable tuple)."""
        return tuple(
            (f.attname, getattr(self, f.attname))
            for f in self._meta.concrete_fields
            if f.name not in self.NON_CONNECTION_FIELDS
        )

    def secrets_to_reenter(self, changed, given=()):
        """(address fields that differ, secrets to give again) for `changed`, this stored
        storage with other values, when the fields in `given` are set by the caller. A stored
        secret is only sent where it was saved for: once an `address_fields` value changes
        (endpoint, host, port, account...), each stored secret the caller does not give again
        must be re-entered. A new prefix or title keeps them. None and "" are the same."""
        moved = [name for name in self.address_fields if (getattr(self, name) or "") != (getattr(changed, name) or "")]
        if not moved:
            return moved, []
        return moved, [name for name in self.secret_fields if name not in given and getattr(self, name, None)]

    def validate_connection(self, client=None):
        """Raise `StorageError` naming the problem unless the location is usable."""
        (client or self.get_client()).check(prefix=None)


class ProjectStorageMixin(models.Model):
    project = models.ForeignKey(
        "projects.Project", on_delete=models.CASCADE, related_name="%(class)ss", help_text="Project of this storage"
    )

    class Meta:
        abstract = True


class ImportStorage(Storage):
    is_export = False

    regex_filter = models.TextField(
        null=True,
        blank=True,
        help_text="Only import keys matching this regular expression (RE2 syntax, matched from the start)",
    )
    use_blob_urls = models.BooleanField(
        default=False, help_text="One task per object (its URL in the data) instead of parsing objects as tasks"
    )
    recursive_scan = models.BooleanField(default=False, help_text="List the whole tree below the prefix")
    event_queue = models.CharField(
        max_length=2048,
        blank=True,
        default="",
        help_text="Where the bucket's object notifications are read from (S3: an SQS queue URL); empty: listing only",
    )

    class Meta:
        abstract = True

    def validate_connection(self, client=None):
        # An import storage is useless without objects under its prefix: say so at once. Without
        # a prefix an empty bucket is fine (files may come later), as in the spec and Label Studio.
        (client or self.get_client()).check(prefix=self.key_prefix or None)


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
        abstract = True  # each provider's link indexes (storage, key): "already linked?" is asked per batch


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
