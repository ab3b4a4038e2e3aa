"""The sync lifecycle: start (with the one-at-a-time guard), run, and the health check.

Every caller (the API, the admin, the management commands) goes through these functions;
the storage models only record states (their `info_*` transitions). A sync runs as
`run_sync_job` in the job runner (core.jobs: RQ when Redis answers, else in-process), or in
the caller's process through `run_sync` (the `sync_storage` command).
"""

import logging
import time
from datetime import timedelta

from django.apps import apps
from django.conf import settings
from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

from core import jobs
from io_storages.client import StorageError, unexpected_error
from io_storages.export import export_project
from io_storages.fields import SecretKeyError
from io_storages.registry import model_label, storage_from_label
from io_storages.sync import ImportSync

logger = logging.getLogger(__name__)

#: sent with `storage` when a sync starts running (status `in_progress`)
sync_started = Signal()
#: sent with `storage` when a sync has ended: its status is `completed`,
#: `completed_with_errors` or `failed` (then `traceback` says why)
sync_finished = Signal()


def start_sync(storage, **options):
    """Queue a sync of `storage` unless one is already queued or running; return the storage
    as it is now (status `queued`, or the final status when the job ran in-process).

    The row lock makes concurrent requests on PostgreSQL start exactly one job.
    """
    model = type(storage)
    if not claim_sync(storage):
        return model.objects.get(pk=storage.pk)
    job_id = jobs.enqueue(run_sync_job, model_label(model), storage.pk, queue_name=queue_of(model), **options)
    if job_id:
        model.objects.filter(pk=storage.pk).update(last_sync_job=job_id)
    storage.refresh_from_db()
    return storage


def queue_of(model):
    """The RQ queue a storage model's syncs go to."""
    return settings.STORAGE_EXPORT_QUEUE if model.is_export else settings.STORAGE_SYNC_QUEUE


def claim_sync(storage, force=False):
    """Set the storage `queued` unless a sync is already queued or running (False then; with
    `force`, claim it anyway). A dead job does not block: the health check runs first."""
    check_health(storage)
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
    try:
        storage = storage_from_label(label, storage_id)
    except SecretKeyError as e:
        # This process reads secrets with other keys than the one that stored them (a worker
        # with another SECRET_KEY / STORAGE_SECRET_KEYS than the web): say so on the storage.
        logger.error("Sync of %s #%s not started: %s", label, storage_id, e)
        model = apps.get_model(label)
        model.objects.defer(*model.secret_fields).get(pk=storage_id).info_set_failed(str(e))
        return
    if storage is None:  # deleted while queued: nothing to do
        logger.warning("Storage %s #%s no longer exists; sync skipped", label, storage_id)
        return
    run_sync(storage, Progress(storage), **options)


def run_sync(storage, progress, only_new=False):
    """Run the storage's sync in this process and record how it ended. Import storages
    import their objects; export storages write the project's annotations (with `only_new`,
    those never exported to this storage).

    How it ended: `completed`; `completed_with_errors` when some objects (annotations) failed
    and others were imported (exported); `failed`, with the reasons in `traceback`, when there
    were failures and nothing was imported (exported), as Label Studio reports it."""
    storage.info_set_in_progress()
    sync_started.send(sender=type(storage), storage=storage)
    try:
        _run_and_record(storage, progress, only_new)
    finally:
        sync_finished.send(sender=type(storage), storage=storage)


def _run_and_record(storage, progress, only_new):
    try:
        if storage.is_export:
            errors = export_project(storage, progress, only_new=only_new)
        else:
            errors = ImportSync(storage, progress).run()
    except (StorageError, SecretKeyError) as e:
        storage.info_set_failed(str(e))
        return
    except KeyboardInterrupt:
        storage.info_set_failed("Sync interrupted")
        raise
    except Exception as e:
        message = unexpected_error(logger, f"Sync of {type(storage).__name__} #{storage.pk}", e)
        storage.info_set_failed(message[0].upper() + message[1:])
        return
    if errors and not progress.count:
        storage.info_set_failed("\n".join(errors))
        return
    storage.info_set_finished(progress.count, errors=errors, **progress.meta)


def check_health(storage):
    """Mark a queued/running sync whose job died without telling us as failed.

    Covers: the job failed or vanished (from Redis: OOM kill, redeploy, queue flushed; in
    process: the web process that ran it died), and the worker stopped pinging for 5 timer
    periods. A sync still queued says in `meta.waiting` when no worker serves its queue.
    Returns the storage.
    """
    if storage.status not in storage.ACTIVE_STATUSES:
        return storage
    timeout = timedelta(seconds=5 * settings.STORAGE_IN_PROGRESS_TIMER)
    now = timezone.now()
    problem = state = None
    if storage.last_sync_job:
        state = jobs.job_state(storage.last_sync_job)
        if state is None:
            problem = (
                f"Sync job {storage.last_sync_job} is gone: the worker or web process running it "
                "died, or the queue was flushed"
            )
        elif state in ("failed", "stopped", "canceled"):
            problem = f"Sync job {storage.last_sync_job} {state} in the worker"
    if problem is None and storage.status == storage.Status.IN_PROGRESS:
        last_ping = storage.meta_time("time_last_ping")
        if last_ping is None or now - last_ping > timeout:
            problem = (
                f"Sync stopped: no progress ping for more than {int(timeout.total_seconds())} s "
                "(the worker was probably killed)"
            )
    elif problem is None and not storage.last_sync_job:
        # Queued without a job: an in-process sync whose process died before starting it.
        queued = storage.meta_time("time_queued")
        if queued is None or now - queued > timeout:
            problem = "Sync was queued but never started"
    if problem:
        storage.info_set_failed(problem)
        sync_finished.send(sender=type(storage), storage=storage)  # it will never end otherwise
    elif storage.status == storage.Status.QUEUED:
        storage.info_note_waiting(_why_waiting(storage, state))
    return storage


def _why_waiting(storage, state):
    """Why a queued sync has not started, when no RQ worker serves its queue; else None."""
    if state != "queued" or jobs.is_in_process(storage.last_sync_job):
        return None  # not waiting on RQ (a pool job waits for a thread of its own process)
    queue = queue_of(type(storage))
    if jobs.queue_has_workers(queue):
        return None
    return (
        f"No worker listens to queue '{queue}': the sync starts when one does "
        "(`python manage.py rqworker` serves every queue)"
    )
