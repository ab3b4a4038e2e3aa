"""Scheduled syncs: storages with a `sync_interval_minutes` sync on their own.

`start_due_syncs` is a periodic job (settings.PERIODIC_JOBS, every
STORAGE_SCHEDULE_TICK_SECONDS): run by RQ's cron with Redis (`manage.py rqcron core.cron`),
by the web process's scheduler thread otherwise. It starts each storage whose last sync
began at least one interval ago through `jobs.start_sync`, so the one-at-a-time guard
holds: a sync still running when its next one is due is left alone, and several
schedulers (web processes, a cron next to them) never start two syncs of one storage.
A scheduled export writes only the annotations not yet exported to the storage.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from io_storages.jobs import start_sync
from io_storages.registry import storages

logger = logging.getLogger(__name__)


def next_sync_at(storage):
    """When the storage's next scheduled sync is due (None: it has no schedule): one interval
    after its last sync was queued, or after it was created when it never synced."""
    if storage.sync_interval_minutes is None:
        return None
    minutes = max(storage.sync_interval_minutes, settings.STORAGE_SYNC_MIN_INTERVAL_MINUTES)
    return (storage.meta_time("time_queued") or storage.created_at) + timedelta(minutes=minutes)


def due_storages(now=None):
    now = now or timezone.now()
    scheduled = [
        storage
        for export in (False, True)
        for storage in storages(export, sync_interval_minutes__isnull=False, synchronizable=True)
    ]
    return [s for s in scheduled if s.status not in s.ACTIVE_STATUSES and next_sync_at(s) <= now]


def start_due_syncs():
    """Start every due scheduled sync; return the storages that were due."""
    due = due_storages()
    for storage in due:
        options = {"only_new": True} if storage.is_export else {}
        try:
            start_sync(storage, **options)
        except Exception:  # one storage's trouble must not stop the others' schedule
            logger.exception("Scheduled sync of %s could not start", storage)
    return due
