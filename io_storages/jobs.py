"""Starting sync jobs (with the one-at-a-time guard) and the job function the runner calls."""

import logging
import time
import traceback

from django.conf import settings
from django.db import transaction

from core import jobs
from io_storages.client import StorageError
from io_storages.registry import model_label, storage_from_label

logger = logging.getLogger(__name__)


def start_sync(storage, **options):
    """Queue a sync of `storage` unless one is already queued or running; return the storage
    as it is now (status `queued`, or the final status when the job ran in-process).

    The row lock makes concurrent requests on PostgreSQL start exactly one job.
    """
    model = type(storage)
    if not claim_sync(storage):
        return model.objects.get(pk=storage.pk)
    queue = settings.STORAGE_EXPORT_QUEUE if model.is_export else settings.STORAGE_SYNC_QUEUE
    job_id = jobs.enqueue(run_sync_job, model_label(model), storage.pk, queue_name=queue, **options)
    if job_id:
        model.objects.filter(pk=storage.pk).update(last_sync_job=job_id)
    storage.refresh_from_db()
    return storage


def claim_sync(storage, force=False):
    """Set the storage `queued` unless a sync is already queued or running (False then; with
    `force`, claim it anyway). A dead job does not block: the health check runs first."""
    storage.ensure_status()
    with transaction.atomic():
        locked = type(storage).objects.select_for_update().get(pk=storage.pk)
        if locked.status in locked.ACTIVE_STATUSES and not force:
            return False
        locked.info_set_queued()
    storage.refresh_from_db()
    return True


class Progress:
    """Writes progress (count, meta, ping) to the storage row: after every batch, and from
    `tick()` at most once per STORAGE_IN_PROGRESS_TIMER, so a long object still pings."""

    def __init__(self, storage):
        self.storage = storage
        self.count = 0
        self.meta = {}
        self._last_write = time.monotonic()

    def save(self):
        self.storage.info_update_progress(self.count, **self.meta)
        self._last_write = time.monotonic()

    def tick(self):
        if time.monotonic() - self._last_write >= settings.STORAGE_IN_PROGRESS_TIMER:
            self.save()


def run_sync_job(label, storage_id, **options):
    """The background job: load the storage and run its sync."""
    storage = storage_from_label(label, storage_id)
    if storage is None:  # deleted while queued: nothing to do
        logger.warning("Storage %s #%s no longer exists; sync skipped", label, storage_id)
        return
    run_sync(storage, Progress(storage), **options)


def run_sync(storage, progress, **options):
    """Run the storage's sync in this process and record how it ended."""
    storage.info_set_in_progress()
    try:
        errors = storage.run_sync(progress, **options)
    except StorageError as e:
        storage.info_set_failed(str(e))
        return
    except KeyboardInterrupt:
        storage.info_set_failed("Sync interrupted")
        raise
    except Exception:
        logger.exception("Sync of %s #%s failed", type(storage).__name__, storage.pk)
        storage.info_set_failed(traceback.format_exc())
        return
    storage.info_set_finished(progress.count, errors=errors, **progress.meta)
