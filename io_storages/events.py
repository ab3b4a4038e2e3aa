"""Event-driven import: a bucket's object notifications feed its import storages, no listing.

A provider that can deliver notifications has an adapter module `<package>/events.py`
(registry: `Provider.has_events`) with three functions:

- `source_key(storage)`: who reads from where (queue address and credentials), hashable.
  Storages with equal keys share one `EventSource`: a queue's message goes to one reader, so
  two storages fed by one queue (two prefixes of a bucket, two projects) must read it
  together, and storages with other credentials never read each other's queue.
- `check_event_queue(storage, connect=True)`: parse the storage's `event_queue` strictly,
  check it against SSRF and, with `connect`, that the queue answers with these credentials;
  `StorageError` naming the problem.
- `source_for(storage)`: the `EventSource` of that queue, read with the storage's credentials.

Adapters that exist: S3 (`io_storages/s3/events.py`: S3 event notifications in an SQS
queue, direct or through SNS). GCS Pub/Sub, Azure Event Grid (through a storage queue) or
MinIO webhooks would each be one such module: `receive` turns the provider's message into
`ObjectEvent`s, `ack` deletes or acknowledges it.

The `Consumer` (run by `manage.py consume_events`) reads every import storage that has an
`event_queue`, groups them by `source_key`, and for each batch of messages imports exactly
the notified keys through `ImportSync.import_keys`: the same prefix, `recursive_scan`,
`regex_filter`, link and duplicate rules as a sync. Messages are acknowledged only after
their tasks are committed; a batch that fails unexpectedly (database down) is not, so the
queue delivers it again. Replays create nothing: the key is linked by then. Test and
malformed messages are acknowledged and logged, never retried. Object removals are counted
(the reconciliation of deleted objects is not built yet). What events did is in each
storage's `meta["events"]` (docs/decisions.md): the sync status machine is not touched.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any, Hashable, Iterable, Sequence

from django.db import close_old_connections, connections, transaction
from django.utils import timezone

from io_storages import registry
from io_storages.client import StorageError
from io_storages.fields import SecretKeyError
from io_storages.sync import ImportSync

logger = logging.getLogger(__name__)

CREATED = "created"
REMOVED = "removed"

#: errors kept in meta["events"]["errors"] (the newest)
KEPT_ERRORS = 20


@dataclass(frozen=True)
class ObjectEvent:
    kind: str  # CREATED or REMOVED
    bucket: str  # bucket or container
    key: str  # the object key, decoded


@dataclass
class Message:
    """One message received from a source: its events (none for test or malformed messages),
    what `ack` needs, and for a malformed message what is wrong with it."""

    handle: Any
    events: Sequence[ObjectEvent] = ()
    problem: str | None = None
    id: str = ""


class EventSource:
    """One queue of object notifications, read with one storage's credentials."""

    def receive(self, wait_seconds: float) -> list[Message]:
        """The next messages (at most a provider's batch), waiting up to `wait_seconds` for
        the first; [] when none came. StorageError when the queue cannot be read."""
        raise NotImplementedError

    def ack(self, messages: Sequence[Message]) -> None:
        """Remove `messages` from the queue: they were handled (or are worthless)."""
        raise NotImplementedError

    def close(self) -> None:
        pass


# --- the adapter of a storage's provider --------------------------------------------------


class EventQueueError(StorageError):
    """An event_queue that cannot be used; the message is safe to show to users."""


def adapter(storage):
    """The notification adapter module of the storage's provider, or None."""
    path = registry.provider_of(storage).events_module
    return import_module(path) if path else None


def check_event_queue(storage, connect=True):
    """Raise `StorageError` unless the storage's `event_queue` (not empty) can be read: parsed
    strictly and SSRF-checked by its provider's adapter, and with `connect` reached with the
    storage's credentials. Providers without an adapter refuse any value."""
    module = adapter(storage)
    if module is None:
        provider = registry.provider_of(storage)
        with_events = [p.type for p in registry.PROVIDERS.values() if p.has_events]
        raise EventQueueError(
            f"{provider.title} storages cannot read object notifications; leave event_queue empty "
            f"(storages of type {', '.join(with_events)} can)"
        )
    module.check_event_queue(storage, connect=connect)


def event_storages(only=None):
    """Import storages that read notifications: a non-empty `event_queue`, synchronizable,
    of a provider with an adapter; with `only`, a set of (type, id), just those."""
    found = []
    for p in registry.PROVIDERS.values():
        if not p.has_events:
            continue
        rows = p.import_model.objects.exclude(event_queue="").filter(synchronizable=True).select_related("project")
        found += [s for s in rows.order_by("pk") if only is None or (p.type, s.pk) in only]
    return found


def groups_of(storages):
    """{source key: [storages]} (see the module's docstring)."""
    groups = defaultdict(list)
    for storage in storages:
        groups[(registry.model_label(type(storage)), adapter(storage).source_key(storage))].append(storage)
    return dict(groups)


# --- what events did, per storage ------------------------------------------------------------


@dataclass
class EventCounts:
    """What one storage's events did since its counts were last written."""

    imported: int = 0  # tasks created
    existed: int = 0  # tasks that were there already (replays, keys synced before)
    ignored: int = 0  # keys a listing of the storage would not yield (prefix, regex_filter...)
    removed: int = 0  # objects removed (not acted on yet)
    failed: int = 0  # errors
    errors: list = field(default_factory=list)
    last_event: str | None = None

    def add(self, other: "EventCounts"):
        for name in ("imported", "existed", "ignored", "removed", "failed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors = (self.errors + other.errors)[-KEPT_ERRORS:]
        self.last_event = other.last_event or self.last_event

    def __bool__(self):
        return bool(self.last_event)


def record_counts(storage, counts: EventCounts) -> bool:
    """Add `counts` to `meta["events"]` of the storage row; False (nothing written) while a
    sync is queued or running, whose writes of `meta` would undo it: the caller keeps the
    counts and tries again. `meta["events"]["since"]` is when this count began (a sync
    starting keeps `meta["events"]`, see StorageInfo.info_set_queued)."""
    model = type(storage)
    with transaction.atomic():
        row = model.objects.select_for_update().filter(pk=storage.pk).values("status", "meta").first()
        if row is None:  # deleted meanwhile: nothing to record
            return True
        if row["status"] in model.ACTIVE_STATUSES:
            return False
        meta = row["meta"] or {}
        events = dict(meta.get("events") or {"since": timezone.now().isoformat()})
        for name in ("imported", "existed", "ignored", "removed", "failed"):
            events[name] = events.get(name, 0) + getattr(counts, name)
        events["errors"] = (events.get("errors", []) + counts.errors)[-KEPT_ERRORS:]
        events["time_last_event"] = counts.last_event
        model.objects.filter(pk=storage.pk).update(meta={**meta, "events": events})
    storage.meta = {**meta, "events": events}
    return True


def record_queue_problem(storage, problem):
    """Set (or, with None, clear) `meta["events"]["queue_error"]`: why the storage's queue
    cannot be read now (SSRF refusal, credentials, a missing queue)."""
    model = type(storage)
    with transaction.atomic():
        row = model.objects.select_for_update().filter(pk=storage.pk).values("status", "meta").first()
        if row is None or row["status"] in model.ACTIVE_STATUSES:
            return
        meta = row["meta"] or {}
        events = dict(meta.get("events") or {"since": timezone.now().isoformat()})
        if events.get("queue_error") == problem:
            return
        events["queue_error"] = problem
        model.objects.filter(pk=storage.pk).update(meta={**meta, "events": events})


class _Progress:
    """ImportSync's progress for event imports: nothing goes to the sync's status fields."""

    count = 0
    meta: dict = {}

    def tick(self):
        pass

    def save(self):
        pass


# --- the consumer -------------------------------------------------------------------------------


def import_events(storage, events: Iterable[ObjectEvent]) -> EventCounts:
    """Import the created keys of `events` that concern `storage` (its bucket) by ImportSync's
    rules; count the removed ones. Errors of single keys are recorded, not raised; a storage
    that cannot be used (its regex_filter, its secrets) is one error for all its keys."""
    counts = EventCounts()
    created, removed = [], 0
    for event in events:
        if event.bucket != storage.bucket_name:
            continue
        if event.kind == CREATED:
            created.append(event.key)
        elif event.kind == REMOVED:
            removed += 1
    if not created and not removed:
        return counts
    counts.last_event = timezone.now().isoformat()
    counts.removed = removed
    if created:
        try:
            sync = ImportSync(storage, _Progress(), client=registry.shared_client(storage))
            errors = sync.import_keys(created)
        except (StorageError, SecretKeyError) as e:
            counts.failed += 1
            counts.errors.append(f"{len(created)} notified objects not imported: {e}; a sync imports them")
            return counts
        counts.imported, counts.existed, counts.ignored = sync.created, sync.existed, sync.ignored
        counts.failed += len(errors)
        counts.errors += errors[-KEPT_ERRORS:]
    for error in counts.errors:
        logger.warning("%s: event import: %s", storage, error)
    return counts


class Consumer:
    """Reads the notification queues of event storages and imports what they notify.

    `run_once()` drains every queue once (until a receive comes back empty) and returns;
    `run()` keeps one thread per queue until `stop()`, re-reading the storages every
    `rescan_seconds` (new, edited and deleted storages are picked up then).
    """

    def __init__(self, only=None, wait_seconds=20.0, rescan_seconds=30.0, out=None):
        self.only = only
        self.wait_seconds = wait_seconds
        self.rescan_seconds = rescan_seconds
        self.out = out or (lambda text: logger.info("%s", text))
        self._stopping = threading.Event()
        self._pending = {}  # (model label, pk) -> EventCounts not yet written (a sync was running)
        self._lock = threading.Lock()
        self._groups = {}  # source key -> [(model, pk)]
        self._threads = {}

    # --- one batch ---
    def handle(self, storages, messages: Sequence[Message]):
        """Import what `messages` notify for `storages` (one source's), record the counts,
        and return them by storage."""
        for message in messages:
            if message.problem:
                logger.warning("Event message %s ignored: %s", message.id or "?", message.problem)
        events = [event for message in messages for event in message.events]
        results = {}
        for storage in storages:
            counts = import_events(storage, events)
            results[storage] = counts
            self._record(storage, counts)
        return results

    def _record(self, storage, counts):
        label = (registry.model_label(type(storage)), storage.pk)
        with self._lock:
            pending = self._pending.pop(label, EventCounts())
        pending.add(counts)
        if pending and not record_counts(storage, pending):
            with self._lock:
                self._pending[label] = pending

    def read_batch(self, source, storages, wait_seconds):
        """One receive, import and ack; the number of messages received."""
        messages = source.receive(wait_seconds)
        if not messages:
            return 0
        results = self.handle(storages, messages)
        source.ack(messages)  # after the tasks are committed: handle() returned
        imported = sum(c.imported for c in results.values())
        self.out(f"{len(messages)} messages: {imported} tasks created for {', '.join(map(str, storages))}")
        return len(messages)

    # --- once ---
    def run_once(self):
        """Drain each queue once; the number of messages handled."""
        handled = 0
        for storages in groups_of(event_storages(self.only)).values():
            source = None
            try:
                source = adapter(storages[0]).source_for(storages[0])
                while count := self.read_batch(source, storages, self.wait_seconds):
                    handled += count
                self._queue_problem(storages, None)
            except (StorageError, SecretKeyError) as e:
                self.out(f"Reading events for {', '.join(map(str, storages))} failed: {e}")
                self._queue_problem(storages, str(e))
            finally:
                if source is not None:
                    source.close()
        self._flush_pending(final=True)
        return handled

    def _queue_problem(self, storages, problem):
        for storage in storages:
            if (storage.meta.get("events") or {}).get("queue_error") != problem:
                record_queue_problem(storage, problem)

    def _flush_pending(self, final=False):
        """Write the counts that waited for a sync to end; `final`: the last chance."""
        with self._lock:
            pending, self._pending = self._pending, {}
        for (label, pk), counts in pending.items():
            storage = registry.storage_from_label(label, pk)
            if storage is None or record_counts(storage, counts):
                continue
            if final:
                logger.warning("%s: event counts not recorded (a sync is running): %s", storage, counts)
            else:
                with self._lock:
                    self._pending.setdefault((label, pk), EventCounts()).add(counts)

    # --- forever ---
    def run(self):
        """Consume until `stop()`: one thread per source, storages re-read every
        `rescan_seconds`."""
        try:
            while not self._stopping.is_set():
                self._rescan()
                self._stopping.wait(self.rescan_seconds)
                self._flush_pending()
        finally:
            self._stopping.set()
            for thread in self._threads.values():
                thread.join(self.wait_seconds + 5)
            self._flush_pending(final=True)
            connections.close_all()  # this thread's; each source thread closes its own

    def stop(self):
        self._stopping.set()

    def _rescan(self):
        close_old_connections()
        try:
            groups = groups_of(event_storages(self.only))
        except Exception:
            logger.exception("Reading the event storages failed; trying again later")
            return
        with self._lock:
            self._groups = {key: [(type(s), s.pk) for s in storages] for key, storages in groups.items()}
        for key in groups:
            thread = self._threads.get(key)
            if thread is None or not thread.is_alive():
                thread = threading.Thread(target=self._consume, args=(key,), name=f"events-{key[0]}", daemon=True)
                self._threads[key] = thread
                thread.start()
        for key in [k for k, t in self._threads.items() if not t.is_alive()]:
            del self._threads[key]

    def _members(self, key: Hashable):
        """The storages of source `key` now, freshly read (None: the source is gone)."""
        with self._lock:
            members = self._groups.get(key)
        if not members:
            return None
        storages = []
        for model, pk in members:
            storage = model.objects.select_related("project").filter(pk=pk).first()
            if (
                storage is not None
                and storage.event_queue
                and storage.synchronizable
                and (registry.model_label(model), adapter(storage).source_key(storage)) == key
            ):
                storages.append(storage)
        return storages or None

    def _consume(self, key):
        source, failures, storages = None, 0, None
        try:
            while not self._stopping.is_set():
                try:
                    close_old_connections()
                    storages = self._members(key)
                    if storages is None:
                        return  # the storages were deleted or edited: the next rescan decides
                    if source is None:
                        source = adapter(storages[0]).source_for(storages[0])
                    self.read_batch(source, storages, self.wait_seconds)
                    if failures:
                        self._queue_problem(storages, None)
                    failures = 0
                except Exception as e:
                    # Not acknowledged: the queue delivers the messages again. Back off.
                    failures += 1
                    if isinstance(e, (StorageError, SecretKeyError)):
                        logger.warning("Reading events (%s) failed: %s", key[0], e)
                        if storages:
                            self._queue_problem(storages, str(e))
                    else:
                        logger.exception("Reading events (%s) failed", key[0])
                    if source is not None:
                        source.close()
                        source = None
                    self._stopping.wait(min(60.0, 2.0**failures))
        finally:
            if source is not None:
                source.close()
            connections.close_all()


def consume_once(only=None, wait_seconds=1.0):
    """Drain the queues once (tests, cron): the number of messages handled."""
    return Consumer(only=only, wait_seconds=wait_seconds).run_once()
