"""Sync events to webhooks: `io_storages.jobs.run_sync` sends `sync_started` and
`sync_finished`; for each active webhook of the storage's project that wants the action, one
delivery is queued once the storage's state is committed (`transaction.on_commit`: at once
outside a transaction). Nothing here may fail or hold up a sync: errors are logged, and the
deliveries run as jobs (`io_storages.webhooks.delivery`)."""

import logging
from functools import partial

from django.db import transaction
from django.dispatch import receiver
from django.utils.dateparse import parse_datetime

from io_storages.jobs import sync_finished, sync_started
from io_storages.webhooks.delivery import enqueue_delivery
from io_storages.webhooks.models import (
    STORAGE_SYNC_COMPLETED,
    STORAGE_SYNC_FAILED,
    STORAGE_SYNC_STARTED,
    Webhook,
)

logger = logging.getLogger(__name__)

#: most characters of the first line of the traceback sent as `error`
ERROR_LENGTH = 500
#: storage `meta` entries that are not counts
_NOT_COUNTS = {"attempts", "duration"}


@receiver(sync_started, dispatch_uid="io_storages.webhooks.sync_started")
def _sync_started(sender, storage, **kwargs):
    emit(storage, STORAGE_SYNC_STARTED)


@receiver(sync_finished, dispatch_uid="io_storages.webhooks.sync_finished")
def _sync_finished(sender, storage, **kwargs):
    completed = storage.status in (storage.Status.COMPLETED, storage.Status.COMPLETED_WITH_ERRORS)
    emit(storage, STORAGE_SYNC_COMPLETED if completed else STORAGE_SYNC_FAILED)


def emit(storage, action):
    """Queue `action` for every webhook of the storage's project that wants it."""
    try:
        webhooks = [
            webhook
            for webhook in Webhook.objects.filter(project_id=storage.project_id, is_active=True).defer("secret")
            if webhook.wants(action)
        ]
        if not webhooks:
            return
        event = sync_event(storage, action)
        for webhook in webhooks:
            transaction.on_commit(
                partial(enqueue_delivery, webhook.pk, action, event if webhook.send_payload else {}), robust=True
            )
    except Exception:
        logger.exception("Webhooks of %s #%s not queued for %s", type(storage).__name__, storage.pk, action)


def _time(meta, name):
    value = meta.get(name)
    return parse_datetime(value) if isinstance(value, str) else None


def first_error(traceback):
    """The first non-empty line of a storage's traceback, at most ERROR_LENGTH characters."""
    for line in (traceback or "").splitlines():
        if line.strip():
            line = line.strip()
            return line if len(line) <= ERROR_LENGTH else line[: ERROR_LENGTH - 1] + "…"
    return None


def sync_event(storage, action):
    """The event of a sync as webhooks receive it (plain JSON values; the body adds `action`,
    `delivery_id` and `timestamp`)."""
    meta = storage.meta if isinstance(storage.meta, dict) else {}
    started = _time(meta, "time_in_progress")
    ended = None
    if action == STORAGE_SYNC_COMPLETED:
        ended = _time(meta, "time_completed")
    elif action == STORAGE_SYNC_FAILED:
        ended = _time(meta, "time_failure")
    counts = {
        key: value
        for key, value in meta.items()
        if key not in _NOT_COUNTS and not key.startswith("time_") and type(value) is int
    }
    return {
        "project": {"id": storage.project_id, "title": storage.project.title},
        "storage": {
            "id": storage.pk,
            "type": storage.storage_type,
            "kind": "export" if storage.is_export else "import",
            "title": storage.title,
        },
        "status": storage.status,
        "last_sync": storage.last_sync.isoformat() if storage.last_sync else None,
        "last_sync_count": storage.last_sync_count,
        "counts": counts,
        "started_at": started.isoformat() if started else None,
        "finished_at": ended.isoformat() if ended else None,
        "duration": (ended - started).total_seconds() if started and ended else None,
        "error": first_error(storage.traceback) if action != STORAGE_SYNC_STARTED else None,
    }
